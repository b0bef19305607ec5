"""WhatsApp test support: a local stand-in for the Graph API and Meta's webhook payloads."""
