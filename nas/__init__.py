"""THE PIPELINE, grouped by stage. Imports flow one way, from the bottom up:

``config``, ``errors``, ``paths``, ``objectives``, ``checkpoint``, ``progress`` (the bottom: settings, where
files live, the names of objective terms) <- ``compress`` <- ``training`` <- ``runtime`` <- ``search`` <-
``analysis`` <- ``deploy`` <- ``cli``.
"""

import os

# XLA's CPU scheduler that optimizes for concurrency leaves the threads of a small machine idle between the
# hundreds of small fusions of a depthwise-separable network's training step. Turned off, the DS-CNN step on 2
# cores takes about two thirds of the time and the other families are unchanged (benchmarks/finetune_step.py).
# XLA reads its flags when JAX first runs something; a user's own setting of the flag wins.
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
if SCHEDULER_FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {SCHEDULER_FLAG}=false".strip()
