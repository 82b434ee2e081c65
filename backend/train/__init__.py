"""Training commands (``pretrain``, ``finetune``...) and the Lightning template they share (:mod:`.runner`)."""
