# SEED.md "Automatic Step Calculation", unchanged between the markers.
import math

from ato.adict import ADict
from ato.scope import Scope

scope = Scope()
search_spaces = ADict(
    lr=ADict(param_type='FLOAT', param_range=(1e-5, 1e-1), num_samples=20, space_type='LOG'),
    batch_size=ADict(param_type='INTEGER', param_range=(16, 128), num_samples=5, space_type='LOG'),
    model=ADict(param_type='CATEGORY', categories=['resnet50', 'resnet101', 'efficientnet_b0']),
)
seen = []


def train_for_n_steps(num_steps):
    seen.append(num_steps)
    config = scope.config  # the candidate being evaluated
    return -abs(math.log10(config.lr) + 3.1) + num_steps / 1e6


# --- SEED.md begins ---
from ato.hyperopt.hyperband import HyperBand

hyperband = HyperBand(scope, search_spaces, halving_rate=0.3, num_min_samples=4)

max_steps = 100000
steps_per_generation = hyperband.compute_optimized_initial_training_steps(max_steps)
# Example output: [27, 88, 292, 972, 3240, 10800, 36000, 120000]

# Use in training
@hyperband.main
def train(config):
    generation = config.__num_halved__
    num_steps = steps_per_generation[generation]

    metric = train_for_n_steps(num_steps)
    return metric
# --- SEED.md ends ---

if __name__ == '__main__':
    result = train()
    print(steps_per_generation)
    print(sorted(set(seen)))
    print(result.config.__num_halved__, result.metric > -1)
