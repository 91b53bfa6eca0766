from django.apps import AppConfig


class ImagestoreConfig(AppConfig):
    name = "imagestore"
    verbose_name = "Image store"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Remembered HTTP Basic checks are forgotten on logout (a signal receiver).
        from .api import auth_basic  # noqa: F401

        # Service modules register the job kinds they run.
        from .services import commit, fsck, gc, import_, load, pull, push, retention, save  # noqa: F401
        from .services.registries import outbound_policy
        from .services.store_stats import connect

        connect()  # cached store-wide sums are recomputed after any change

        outbound_policy()  # a bad OUTBOUND_ALLOW entry stops start-up, naming it

        from .services.audit import connect_signals

        connect_signals()
