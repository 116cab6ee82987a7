# Debian packages the build and the TLS tests need: OpenSSL and Cyrus SASL headers for
# librdkafka's `ssl` and `sasl` features, and stunnel4 (the TLS listener in front of Tansu).
NATIVE_PKGS=()
dpkg -s libssl-dev >/dev/null 2>&1 || NATIVE_PKGS+=(libssl-dev)
dpkg -s libsasl2-dev >/dev/null 2>&1 || NATIVE_PKGS+=(libsasl2-dev)
command -v stunnel4 >/dev/null 2>&1 || NATIVE_PKGS+=(stunnel4)
debian_install "Kafka TLS/SASL build and test" "${NATIVE_PKGS[@]}"
