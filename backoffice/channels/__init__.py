"""How messages travel: email out (the outbox worker), email in, WhatsApp.

One module per channel; every channel posts through `backoffice.domain`.
"""
