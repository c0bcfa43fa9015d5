"""The front door: the console scripts (``mtl-train`` train.py, ``mtl-launch`` launch.py, ``mtl-status`` status.py
with watch.py, ``mtl-collect`` collect.py, ``mtl-data`` data.py), the parsing and one-line errors they share
(common.py) and the consoles and tables they draw (ui.py). The only modules that print or exit. May import
every other room: the ground floor, ``launch``, ``collect``, ``datacheck``, and ``train`` (deferred, once the
config is known good: torch loads there).
"""
