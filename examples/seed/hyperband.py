# SEED.md "Hyperparameter Optimization: Basic Usage", unchanged between the markers; the
# stand-ins above the markers replace "your training code".
import math

_SCORES = {'resnet50': 0.0, 'resnet101': 0.05, 'efficientnet_b0': 0.02}


def create_model(name):
    return name


class Adam:
    def __init__(self, lr):
        self.lr = lr


def compute_epochs(generation):
    return 2 ** generation


def train_and_evaluate(model, optimizer, num_epochs):
    batch_size = scope.config.batch_size  # the candidate being evaluated
    return -abs(math.log10(optimizer.lr) + 3.1) - abs(batch_size - 45) / 1000 + _SCORES[model]


# --- SEED.md begins (unchanged to the end of the file) ---
from ato.adict import ADict
from ato.hyperopt.hyperband import HyperBand
from ato.scope import Scope

scope = Scope()

# Define search space
search_spaces = ADict(
    lr=ADict(
        param_type='FLOAT',
        param_range=(1e-5, 1e-1),
        num_samples=20,
        space_type='LOG'  # Logarithmic spacing
    ),
    batch_size=ADict(
        param_type='INTEGER',
        param_range=(16, 128),
        num_samples=5,
        space_type='LOG'
    ),
    model=ADict(
        param_type='CATEGORY',
        categories=['resnet50', 'resnet101', 'efficientnet_b0']
    )
)

# Create Hyperband optimizer
hyperband = HyperBand(
    scope,
    search_spaces,
    halving_rate=0.3,      # Keep top 30% each round
    num_min_samples=3,     # Stop when <= 3 configs remain
    mode='max'             # Maximize metric (use 'min' for loss)
)

@hyperband.main
def train(config):
    # Your training code
    model = create_model(config.model)
    optimizer = Adam(lr=config.lr)

    # Use __num_halved__ for early stopping
    num_epochs = compute_epochs(config.__num_halved__)

    # Train and return metric
    val_acc = train_and_evaluate(model, optimizer, num_epochs)
    return val_acc

if __name__ == '__main__':
    # Run hyperparameter search
    best_result = train()
    print(f"Best config: {best_result.config}")
    print(f"Best metric: {best_result.metric}")
