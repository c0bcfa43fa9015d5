"""The collect side: run folders to the comparison table. scan.py reads the run folders, compare.py builds the
report, stats.py and image_tests.py hold the tests, cost.py the cost columns, tables.py, html.py and plots.py
render it, mounts.py picks the reader threads. May import the ground floor and its own modules only: nothing of
``launch``, ``cli`` or ``train``, and never torch (it runs where torch is not).
"""
