"""Config sources for migrating users: OpenMMLab ``_base_`` configs
(:mod:`ato.mmlab.openmmlab`) and Hydra-style composition (:mod:`ato.mmlab.hydra`)."""
