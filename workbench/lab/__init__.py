"""The aha lab: miniature worlds where R1-Zero's emergence reproduces on a CPU, with its controls.

- ``world``: the tasks and the pretraining corpus (styles, priming, honest slips);
- ``base_model``: a tokenizer and a small decoder pretrained from scratch on a world's corpus, cached.
"""
