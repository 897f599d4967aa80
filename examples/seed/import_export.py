# SEED.md "Import/Export Configs": the view, unchanged between the markers (run it in a
# folder holding experiments/baseline.json, models/resnet.yaml and
# mmdet_configs/faster_rcnn.py, as the snippet expects).
from ato.scope import Scope

scope = Scope()

# --- SEED.md begins ---
@scope.observe()
def load_external(config):
    # Load from any format
    config.load('experiments/baseline.json')
    config.load('models/resnet.yaml')

    # Export to any format
    config.dump('output/final_config.toml')

    # Import OpenMMLab configs - handles _base_ inheritance automatically
    config.load_mm_config('mmdet_configs/faster_rcnn.py')
# --- SEED.md ends ---

@scope
def main(config):
    print(config.to_dict())

if __name__ == '__main__':
    main()
