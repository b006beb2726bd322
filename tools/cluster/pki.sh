#!/usr/bin/env bash
# Certificates and kubeconfigs of the test cluster, made anew at every start (valid for 2 days):
# a CA, a client certificate per component, the apiserver's serving certificate, the service
# account key pair. The user's kubeconfig ($KUBECONFIG_FILE) has the context chaos-lab-test.
set -euo pipefail
# shellcheck source=tools/cluster/lib.sh
source "$(dirname "$0")/lib.sh"

rm -rf "$PKI"
mkdir -p "$PKI"
cd "$PKI"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=chaos-lab-test-ca" 2>/dev/null

# sign NAME SUBJECT EXTENSIONS
sign() {
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "$2" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 2 \
    -extfile <(printf '%s\n' "$3") 2>/dev/null
  rm -f "$1.csr"
}
client_ext=$'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth'
sign admin "/O=system:masters/CN=chaos-lab-admin" "$client_ext"
sign kcm "/CN=system:kube-controller-manager" "$client_ext"
sign sched "/CN=system:kube-scheduler" "$client_ext"
sign kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client_ext"
sign proxy "/CN=system:kube-proxy" "$client_ext"
sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client_ext"
sign apiserver "/CN=kube-apiserver" $'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'"subjectAltName=IP:127.0.0.1,IP:10.96.0.1,IP:$NODE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
# The kubelet's serving certificate, so that exec, logs and port-forward are verified TLS.
sign kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" $'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n'"subjectAltName=IP:$NODE_IP,DNS:$NODE_NAME"
openssl genrsa -out sa.key 2048 2>/dev/null
openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null

b64() { base64 -w0 "$1"; }
# kubeconfig FILE USER CONTEXT
kubeconfig() {
  cat > "$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(b64 ca.crt)
users:
- name: $2
  user:
    client-certificate-data: $(b64 "$2.crt")
    client-key-data: $(b64 "$2.key")
contexts:
- name: $3
  context: {cluster: $CONTEXT, user: $2}
current-context: $3
YAML
}
for component in kcm sched kubelet proxy; do kubeconfig "$component.kubeconfig" "$component" "$CONTEXT"; done
kubeconfig "$KUBECONFIG_FILE" admin "$CONTEXT"
