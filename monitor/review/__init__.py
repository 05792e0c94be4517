"""Review: analysts' verdicts on flagged coverage, and what the monitor learns from them.

* ``decisions``: record a verdict under the writer lease (the CLI and the review page both call it);
* ``calibration``: re-fit each topic's threshold from stored verdicts;
* ``dry_run``: what a topic edit would add or remove, and its precision on reviewed items.
"""
