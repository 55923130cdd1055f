"""`gasguard notify`: the platform-side service that tells people about alarms.

Modules by role (docs/notify.md has the design):

    config      recipients, sites (which devices, address, escalation tiers), channel settings
    store       SQLite (default) or PostgreSQL: recipients, sites, seen events, incidents,
                the delivery queue and its log
    events      what a device message means for people (alarm on/off, fault, valve, offline)
    dedup       the event identity (dev, boot, seq) and the ingest transaction built on it
    escalation  who is told at each step of an unacknowledged alarm, and when
    ratelimit   when a non-first notification to one endpoint must wait
    queue       the delivery workers: claim with a lease, send, retry with backoff
    texts       the message text, Chinese (default) and English
    channels/   one plug-in per channel: webhook, wecom, dingtalk, email, sms/voice gateway, console
    ackweb      signed acknowledgement links and the small HTTP endpoint that serves them
    members     --share: which instance holds which persistent MQTT session; taking over
                the session of an instance that went silent
    service     the long-running loop: MQTT subscription, ingest, escalation, workers
"""
