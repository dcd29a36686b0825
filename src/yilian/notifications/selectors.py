"""Reads of notifications: a user sees only their own inbox (another user's message is NotFound)."""

from __future__ import annotations

from django.db.models import QuerySet

from yilian.common.errors import NotFound
from yilian.common.policy import Actor
from yilian.notifications.models import InboxMessage


def inbox_of(actor: Actor, *, unread_only: bool = False) -> QuerySet[InboxMessage]:
    """The actor's own inbox, newest first (none for an actor without a user, e.g. an API key)."""
    if not actor.user_id:
        return InboxMessage.objects.none()
    messages = InboxMessage.objects.filter(recipient_id=actor.user_id)
    if unread_only:
        messages = messages.filter(read_at__isnull=True)
    return messages.order_by("-created_at", "-id")


def unread_count(actor: Actor) -> int:
    return inbox_of(actor, unread_only=True).count()


def access_message(actor: Actor, message_id: int) -> InboxMessage:
    """One of the actor's own messages; a missing one and someone else's look alike."""
    message = inbox_of(actor).filter(pk=message_id).first()
    if message is None:
        raise NotFound()
    return message
