# SEED.md "Extensible Design": a custom algorithm, unchanged between the markers.
from ato.adict import ADict
from ato.scope import Scope

# --- SEED.md begins ---
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt

class RandomSearch(GridSpaceMixIn, HyperOpt):
    def main(self, func):
        # Reuse GridSpaceMixIn.prepare_distributions()
        configs = self.prepare_distributions(self.config, self.search_spaces)

        # Implement random sampling
        import random
        random.shuffle(configs)

        results = []
        for config in configs[:10]:  # Sample 10 random configs
            metric = func(config)
            results.append((config, metric))

        return max(results, key=lambda x: x[1])
# --- SEED.md ends ---

if __name__ == '__main__':
    scope = Scope()
    space = ADict(x=ADict(param_type='INTEGER', param_range=(0, 9), num_samples=10))
    config, metric = RandomSearch(scope, space).main(lambda c: -(c.x - 6) ** 2)
    print(config.x, metric)
