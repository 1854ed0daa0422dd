"""Settings a user wrote that PoundCake does not read, for one warning at startup.

StackStorm ignores options it does not know, so a real ``st2.conf`` is never refused for them;
instead every engine process logs one warning naming what it will not act on. Options StackStorm
itself has (3.9, :data:`STACKSTORM_OPTIONS`) are named "not supported": StackStorm would change
its behaviour for them and PoundCake does not. Anything else is named "unknown". PoundCake's own
``.env`` is checked the same way against the settings :class:`poundcake.config.Settings` reads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from dotenv import dotenv_values

from poundcake.config_sections import SECTIONS

# StackStorm 3.9's st2.conf options by section (st2common/config.py and each service's config).
STACKSTORM_OPTIONS: dict[str, frozenset[str]] = {
    name: frozenset(keys.split())
    for name, keys in {
        "action_sensor": "emit_when enable",
        "actionrunner": "actions_pool_size exit_still_active_check graceful_shutdown logging "
        "pip_opts python_binary python_runner_log_level still_active_check_interval "
        "stream_output stream_output_buffer_size virtualenv_binary virtualenv_opts "
        "workflows_pool_size",
        "api": "allow_origin auth_cookie_same_site auth_cookie_secure debug host logging "
        "mask_secrets max_page_size port",
        "api_pecan": "auth_enable debug errors modules root static_root template_path",
        "auth": "api_url backend backend_kwargs cert debug enable host key logging mode port "
        "service_token_ttl sso sso_backend sso_backend_kwargs token_ttl use_ssl",
        "content": "index_url pack_group packs_base_paths runners_base_paths "
        "system_packs_base_path system_runners_base_path",
        "coordination": "lock_timeout service_registry url",
        "database": "authentication_mechanism compressors connection_retry_backoff_max_s "
        "connection_retry_backoff_mul connection_retry_max_delay_m connection_timeout db_name "
        "host password port ssl_cert_reqs ssl_certfile ssl_keyfile ssl_match_hostname tls "
        "tls_allow_invalid_certificates tls_allow_invalid_hostnames tls_ca_file "
        "tls_certificate_key_file tls_certificate_key_file_password username "
        "zlib_compression_level",
        "garbagecollector": "action_executions_output_ttl action_executions_ttl "
        "collection_interval logging purge_inquiries rule_enforcements_ttl sleep_delay "
        "task_executions_ttl tokens_ttl traces_ttl trigger_instances_ttl "
        "workflow_executions_ttl",
        "keyvalue": "enable_encryption encryption_key_path",
        "log": "excludes mask_secrets mask_secrets_blacklist redirect_stderr",
        "messaging": "cluster_urls compression connection_retries connection_retry_wait "
        "login_method prefix ssl ssl_ca_certs ssl_cert_reqs ssl_certfile ssl_keyfile url",
        "metrics": "driver host port prefix sample_rate",
        "notifier": "logging",
        "packs": "enable_common_libs",
        "rbac": "backend enable permission_isolation sync_remote_groups",
        "results_tracker": "query_interval thread_pool_size",
        "rulesengine": "logging",
        "scheduler": "execution_scheduling_timeout_threshold_min gc_interval logging pool_size "
        "retry_max_attempt retry_wait_msec sleep_interval",
        "schema": "draft version",
        "sensorcontainer": "logging partition_provider sensor_node_name single_sensor_mode",
        "ssh_runner": "allow_partial_failure max_parallel_actions remote_dir "
        "ssh_config_file_path ssh_connect_timeout use_ssh_config",
        "stream": "debug heartbeat host logging port",
        "syslog": "facility host port protocol",
        "system": "base_path debug validate_output_schema validate_trigger_parameters "
        "validate_trigger_payload",
        "system_user": "ssh_key_file user",
        "timer": "enable local_timezone logging",
        "timersengine": "enable local_timezone logging",
        "webui": "webui_base_url",
        "workflow_engine": "exit_still_active_check gc_max_idle_sec logging "
        "retry_max_jitter_msec retry_stop_max_msec retry_wait_fixed_msec "
        "still_active_check_interval",
    }.items()
}

# Why a setting of PoundCake's install guide is not read, where there is more to say.
ENV_NOTES: dict[str, str] = {
    "ST2_AUTH_URL": "not needed: PoundCake authenticates to the engine with ST2_API_KEY",
}


def _read_keys(section: str) -> frozenset[str]:
    model = SECTIONS.get(section)
    return frozenset(model.model_fields) if model is not None else frozenset()


def unread_st2_settings(sections: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Every ``[section] key`` of st2.conf PoundCake does not read, with why."""
    unread = []
    for section, values in sorted(sections.items()):
        read = _read_keys(section)
        for key in sorted(set(values) - read):
            known = key in STACKSTORM_OPTIONS.get(section, frozenset())
            unread.append(f"[{section}] {key} ({'not supported' if known else 'unknown'})")
    return unread


def unread_env_settings(
    env_file: Path, read: Iterable[str], environment: Mapping[str, str]
) -> list[str]:
    """The keys of ``env_file`` no setting in ``read`` takes, and guide settings we ignore."""
    names = {name.upper() for name in read}
    keys = set(dotenv_values(env_file)) if env_file.is_file() else set()
    keys |= {name for name in ENV_NOTES if name in environment}
    unread = []
    for key in sorted(k for k in keys if k.upper() not in names):
        note = ENV_NOTES.get(key.upper(), "unknown")
        unread.append(f"{key} ({note})")
    return unread
