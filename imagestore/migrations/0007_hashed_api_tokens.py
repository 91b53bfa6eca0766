"""Hashed API tokens; the plain-text keys of rest_framework.authtoken are hashed into them and
then deleted from its table (the app is no longer installed; its table stays, empty)."""

import hashlib
from datetime import datetime, timezone

from django.conf import settings
from django.db import migrations, models
import django.db.models.deletion


def hash_old_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("imagestore", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id, created FROM authtoken_token")
        rows = cursor.fetchall()
        for key, user_id, created in rows:
            token = ApiToken.objects.create(
                user_id=user_id, name="migrated from authtoken", prefix=key[:8],
                digest=hashlib.sha256(key.encode()).hexdigest(),
            )
            if isinstance(created, datetime) and created.tzinfo is None:
                created = created.replace(tzinfo=timezone.utc)  # stored in UTC (USE_TZ)
            ApiToken.objects.filter(pk=token.pk).update(created_at=created)
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):

    dependencies = [
        ('imagestore', '0006_housekeeping'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(blank=True, default='', max_length=255)),
                ('prefix', models.CharField(help_text="the key's first characters, to tell tokens apart", max_length=16)),
                ('digest', models.CharField(help_text='sha256 of the key, hex', max_length=64, unique=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('expires_at', models.DateTimeField(blank=True, help_text='empty: never expires', null=True)),
                ('last_used_at', models.DateTimeField(blank=True, null=True)),
                ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='api_tokens', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-created_at'],
            },
        ),
        migrations.RunPython(hash_old_tokens, migrations.RunPython.noop),
    ]
