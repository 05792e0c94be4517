"""Alerts: which copy of a story carries its alert, the outbox queue, messages, and channels.

* ``carriers``: the rule that gives one alert per story and topic, and which copy carries it;
* ``queue``: newly matched pairs into outbox rows (one transaction with their match);
* ``messages``: the alert's payload and console line;
* ``channels``: the :class:`~monitor.alerts.channels.Channel` protocol and its implementations;
* ``delivery``: pending alerts handed to channels and recorded.
"""
