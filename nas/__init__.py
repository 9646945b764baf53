"""THE PIPELINE, grouped by stage. Imports flow one way, from the bottom up:

``config``, ``errors``, ``paths``, ``objectives``, ``checkpoint``, ``progress`` (the bottom: settings, where
files live, the names of objective terms) <- ``compress`` <- ``training`` <- ``search`` <- ``analysis`` <-
``deploy`` <- ``cli``.
"""
