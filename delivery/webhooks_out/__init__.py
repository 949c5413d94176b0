"""Webhooks out to the platform, as the Standard Webhooks spec describes them.

`signing` makes secrets and signatures, `targets` keeps requests off private networks,
`sender` delivers the outbox (storage.webhooks), `service` is the admin API's logic.
(`delivery.webhooks` is the other direction: provider webhooks coming in.)
"""
