"""``mtl-data check`` and the launch preflight's dataset counts: counting a dataset's images (count.py), decoding
and comparing them with the expected counts (check.py), the published release counts in one table
(official.py). May import the ground floor, its own modules and the readers of ``train.data`` (deferred, inside
functions); never ``launch``, ``collect`` or ``cli``, and never torch.
"""
