# SEED.md "Basic Documentation" and "Real-world Example" of `manual`.
from ato.scope import Scope

scope = Scope()

@scope.observe(default=True)
def defaults(cfg):
    cfg.lr = 0.001
    cfg.batch_size = 32

@scope.observe(priority=1)
def experiment_config(cfg):
    cfg.lr = 0.01

@scope.observe(priority=2)
def another_config(cfg):
    cfg.lr = 0.1

@scope.observe(lazy=True)
def adaptive_lr(cfg):
    if cfg.batch_size > 64:
        cfg.lr = cfg.lr * 2

@scope.manual
def config_docs(cfg):
    cfg.lr = 'Learning rate for optimizer'
    cfg.batch_size = 'Number of samples per batch'
    cfg.model = 'Model architecture (resnet50, resnet101, etc.)'

@scope
def main(cfg):
    print(f"lr={cfg.lr} batch_size={cfg.batch_size}")

if __name__ == '__main__':
    main()
