# %pre of the stamp-suite RPM: create the system user and group `stamp` that
# stamp-reflector.service runs as (no login shell, no home directory).
# Enabling and starting the service is left to the administrator:
#   systemctl enable --now stamp-reflector
getent group stamp >/dev/null || groupadd --system stamp
getent passwd stamp >/dev/null || \
    useradd --system --gid stamp --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin --comment "STAMP Session-Reflector" stamp
exit 0
