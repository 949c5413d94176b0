"""Uploads for messages and emails: checked against their bytes, taken once, swept when unused.

Below rooms and delivery, which both use it; what it needs of messaging (who may see a
conversation, how a message is sent) it declares in `attachments.ports`.
"""
