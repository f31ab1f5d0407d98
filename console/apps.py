from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """The agent console under /console/: pages over the retention services and
    selectors, templates in the project's top-level ``templates/console/``."""

    name = "console"
    verbose_name = "Agent console"
