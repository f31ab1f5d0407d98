from django.apps import AppConfig


class MlConfig(AppConfig):
    name = "ml"
    verbose_name = "Churn models"

    def ready(self) -> None:
        from customers.privacy import privacy_register
        from ml.privacy import scores_erase, scores_export

        privacy_register(section="ml", export=scores_export, erase=scores_erase)
