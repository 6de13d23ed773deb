"""Conditioning as transformations of the score function (ARCHITECTURE.md): every solver runs
every condition because all of them query samplers.ModelFns.score."""
