"""The cluster tier: the image from the Dockerfile, the chart, and runner Jobs as real pods on a real
kubelet (hack/real-node.sh). Marker ``cluster``; run with ``make test-cluster``."""
