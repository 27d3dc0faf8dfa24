"""Notifications on the wire: the Teams, Slack and JSON payloads, and the webhook targets that post them."""
