from urllib.parse import urlsplit

from django.conf import settings
from rest_framework import serializers

from notifications.addresses import is_internal, literal_address
from notifications.models import BatchWebhook, Channel, DeliveryAttempt, Event, Notification


class NotificationSerializer(serializers.ModelSerializer):
    read = serializers.SerializerMethodField()

    class Meta:
        model = Notification
        fields = ["id", "event", "key", "batch", "title", "body", "payload", "created_at", "read", "read_at"]
        read_only_fields = fields

    def get_read(self, notification: Notification) -> bool:
        return notification.read_at is not None


class NotificationGroupSerializer(NotificationSerializer):
    """A batch's newest notice standing for its group (`?group=batch`), with what it hides."""

    earlier = serializers.SerializerMethodField(
        help_text="Earlier notices of the same batch in the list asked for; `?batch=<id>` lists them all."
    )
    unread_in_group = serializers.IntegerField(
        source="group_unread", read_only=True, help_text="Unread notices in the group, this one included."
    )

    class Meta(NotificationSerializer.Meta):
        fields = [*NotificationSerializer.Meta.fields, "earlier", "unread_in_group"]
        read_only_fields = fields

    def get_earlier(self, notification: Notification) -> int:
        return notification.group_size - 1


class PreferencesSerializer(serializers.Serializer):
    """{channel: {event: enabled}} for the personal channels; omitted pairs keep their value."""

    def to_representation(self, grid):
        return grid

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["Send an object of channels."]})
        errors, grid = {}, {}
        for channel, events in data.items():
            if channel not in Channel.personal():
                errors[channel] = [
                    f"Unknown channel; choose from {', '.join(Channel.personal())} "
                    "(webhooks are set per batch)."
                ]
                continue
            if not isinstance(events, dict):
                errors[channel] = ["Send an object of events with true or false."]
                continue
            for event, enabled in events.items():
                if event not in Event.values:
                    errors[f"{channel}.{event}"] = [f"Unknown event; choose from {', '.join(Event.values)}."]
                elif not isinstance(enabled, bool):
                    errors[f"{channel}.{event}"] = ["Must be true or false."]
                else:
                    grid.setdefault(channel, {})[event] = enabled
        if errors:
            raise serializers.ValidationError(errors)
        return grid


class PreferenceGridSerializer(serializers.Serializer):
    """The shape of the preferences grid, for the API schema."""

    in_app = serializers.DictField(child=serializers.BooleanField(), required=False)
    email = serializers.DictField(child=serializers.BooleanField(), required=False)


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["number", "started_at", "duration_ms", "ok", "status_code", "error"]


class WebhookDeliverySerializer(serializers.ModelSerializer):
    attempts_made = serializers.IntegerField(source="attempts")
    attempts = DeliveryAttemptSerializer(source="attempt_log", many=True)

    class Meta:
        model = Notification
        fields = [
            "id",
            "event",
            "key",
            "status",
            "created_at",
            "sent_at",
            "next_attempt_at",
            "last_error",
            "attempts_made",
            "attempts",
        ]


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=Event.choices), required=False, allow_empty=True
    )

    class Meta:
        model = BatchWebhook
        fields = ["id", "url", "events", "is_active", "secret", "created_at"]
        read_only_fields = ["id", "secret", "created_at"]

    def validate_url(self, url: str) -> str:
        if not url.lower().startswith(("http://", "https://")):
            raise serializers.ValidationError("Use an http:// or https:// URL.")
        if not settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE:
            # "name.localhost." is "name.localhost": a trailing dot only says the name is complete.
            host = (urlsplit(url).hostname or "").rstrip(".")
            if host == "localhost" or host.endswith(".localhost") or _is_internal_literal(host):
                raise serializers.ValidationError("Webhooks cannot point at loopback or private addresses.")
        batch = self.context["batch"]
        taken = BatchWebhook.objects.filter(batch=batch, url=url)
        if self.instance is not None:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise serializers.ValidationError("This batch already sends to that URL.")
        return url

    def validate_events(self, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))


def _is_internal_literal(host: str) -> bool:
    """An address written into the URL that is not a public one, in any of its forms.

    Names are resolved and checked when sending (notifications.delivery); here
    nothing is looked up.
    """
    address = literal_address(host)
    return address is not None and is_internal(address)
