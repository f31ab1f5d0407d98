from django.core.management.base import BaseCommand, CommandError

from ml.models import ModelVersion
from ml.services import promote


class Command(BaseCommand):
    help = "Make a model version the champion (by hand, bypassing the gate)."

    def add_arguments(self, parser):
        parser.add_argument("version", type=int, help="ModelVersion id")

    def handle(self, *args, **options):
        try:
            version = ModelVersion.objects.get(pk=options["version"])
        except ModelVersion.DoesNotExist as exc:
            raise CommandError(f"there is no model version #{options['version']}") from exc
        promote(version=version)
        self.stdout.write(self.style.SUCCESS(f"#{version.pk} {version.algorithm} is champion"))
