"""Matching: topic profiles, encoders, and the one scoring function.

* ``topics``: topics.yaml, validated;
* ``embedding``: the :class:`~monitor.matching.embedding.Encoder` protocol and one module per backend;
* ``passages``: articles into passages, and passages into vectors;
* ``keywords``: the keyword evidence rule (one implementation, every script);
* ``scoring``: the scoring function that ingest, rescore, evaluate and explain all call;
* ``rescore`` and ``reembed``: applying topic edits or a new encoder to the stored archive.
"""
