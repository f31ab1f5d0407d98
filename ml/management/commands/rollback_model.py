from django.core.management.base import BaseCommand, CommandError

from ml.services import rollback


class Command(BaseCommand):
    help = "Retire the champion and bring back the previous one."

    def handle(self, *args, **options):
        try:
            version = rollback()
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"#{version.pk} {version.algorithm} is champion"))
