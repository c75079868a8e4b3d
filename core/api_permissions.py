"""Object permissions for the API, shared by every viewset (batches, templates, jobs).

Visibility is the queryset's job: viewsets fetch objects through
`visible_to(user)`, so an object the user may not view is simply not found
(404) and never reveals that it exists. What is left here is the second
question, asked only about objects the user can already see: may they change
it, or delete it? The answers come from core.permissions, the one
place that knows ownership, sharing levels and groups.
"""

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.permissions import Level, can_change, can_delete, has_level, is_shareable

CHANGE_DENIED = "You may view this but not change it."
DELETE_DENIED = "Only its owner may delete it."


class ObjectPermission(BasePermission):
    """Reading needs view, which the visible queryset already guarantees; anything else needs change.

    Actions (start, pause, upload, jobs, settings, duplicate …) are POST/PUT/
    PATCH requests, so they all need change. Deleting a batch or a template
    is its owner's alone: sharing, even at `manage`, never grants it.
    Viewsets must fetch objects through `visible_to(user)` for the read half
    to hold.
    """

    message = CHANGE_DENIED

    def has_object_permission(self, request, view, obj) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if (
            request.method == "DELETE"
            and getattr(view, "action", None) == "destroy"
            and is_shareable(type(obj))
        ):
            if not can_delete(request.user, obj):
                self.message = DELETE_DENIED
                return False
            return True
        return can_change(request.user, obj)


def requires(level: Level) -> type[BasePermission]:
    """A permission asking for `level` on the object, for routes that say what they need.

    A batch action's route asks for the level its table entry names; at
    `change` it is ObjectPermission's own rule and message for a POST.
    """

    class HoldsLevel(BasePermission):
        message = f"You may view this but not {level.verb}."

        def has_object_permission(self, request, view, obj) -> bool:
            return has_level(request.user, obj, level)

    HoldsLevel.__name__ = HoldsLevel.__qualname__ = f"Holds{level.name.capitalize()}"
    return HoldsLevel
