# SEED.md Best Practices "Config Organization" + "Combined Workflow" in one file
# (SEED.md's configs/default.py uses ADict without importing it; the import is added).
import random

from ato.adict import ADict
from ato.scope import Scope

_rng = random.Random(1)


def train_epoch():
    return _rng.random()


def validate():
    return _rng.random()


# --- SEED.md configs/default.py ---
scope = Scope()

@scope.observe(default=True)
def defaults(cfg):
    # Data
    cfg.data = ADict(
        dataset='cifar10',
        batch_size=32,
        num_workers=4
    )

    # Model
    cfg.model = ADict(
        backbone='resnet50',
        pretrained=True
    )

    # Training
    cfg.train = ADict(
        lr=0.001,
        epochs=100,
        optimizer='adam'
    )

    # Experiment tracking
    cfg.experiment = ADict(
        project_name='my_project',
        sql=ADict(db_path='sqlite:///experiments.db')
    )

# --- SEED.md train.py ---
from ato.db_routers.sql.manager import SQLLogger

@scope
def train(cfg):
    # Setup experiment tracking
    logger = SQLLogger(cfg)
    run_id = logger.run(tags=[cfg.model.backbone, cfg.data.dataset])

    try:
        # Training loop
        for epoch in range(cfg.train.epochs):
            loss = train_epoch()
            acc = validate()

            logger.log_metric('loss', loss, epoch)
            logger.log_metric('accuracy', acc, epoch)

        logger.finish(status='completed')

    except Exception as e:
        logger.finish(status='failed')
        raise e

if __name__ == '__main__':
    train()
    from ato.db_routers.sql.manager import SQLFinder
    run = SQLFinder(scope.config).get_runs_in_project('my_project')[-1]
    print(run.status, run.tags, len(run.metrics), run.config.train.epochs)
