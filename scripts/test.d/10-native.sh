# Debian packages the build and the TLS tests need: OpenSSL and Cyrus SASL headers for
# librdkafka's `ssl` and `sasl` features, and stunnel4 (the TLS listener in front of Tansu).
NATIVE_PKGS=()
dpkg -s libssl-dev >/dev/null 2>&1 || NATIVE_PKGS+=(libssl-dev)
dpkg -s libsasl2-dev >/dev/null 2>&1 || NATIVE_PKGS+=(libsasl2-dev)
command -v stunnel4 >/dev/null 2>&1 || NATIVE_PKGS+=(stunnel4)
if [ ${#NATIVE_PKGS[@]} -gt 0 ]; then
  echo "== apt-get install ${NATIVE_PKGS[*]} (first run only)"
  if ! apt-get install -y -qq --no-install-recommends "${NATIVE_PKGS[@]}" >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${NATIVE_PKGS[@]}" >/dev/null
  fi
fi
