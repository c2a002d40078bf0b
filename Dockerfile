# syntax=docker/dockerfile:1
# The budgit image: one static binary, CA certificates and a non-root user, nothing else.
#
#   docker build -t budgit .                      # the image (`runtime`)
#   docker build -t budgit:debug --target debug . # plus a shell, git, curl and jq, for CI jobs
#   docker run -p 8080:8080 -v budgit:/data -e BUDGIT_ADMIN_TOKEN=... budgit
#
# The entrypoint is `budgit`; the default command serves the workspace API on
# 0.0.0.0:8080 with its database in the /data volume. Any other command runs the
# same way (`docker run budgit reconcile ...`). The health check is the binary
# itself (`budgit health`): the image has no shell and no curl.

# Alpine's Rust is musl-native: SQLite and libgit2 compile with its gcc and the
# binary links statically. Pinned: the toolchain the project builds with.
FROM rust:1.95.0-alpine3.22 AS build
RUN apk add --no-cache musl-dev gcc make perl git
WORKDIR /src
COPY . .
# `--version` names the commit when .git is in the build context; otherwise pass it:
# --build-arg BUDGIT_BUILD_COMMIT="$(git log -1 --format='%h %cs' --abbrev=12)".
ARG BUDGIT_BUILD_COMMIT=""
RUN BUDGIT_BUILD_COMMIT="$BUDGIT_BUILD_COMMIT" cargo build --locked --release -p budgit \
 && cp target/release/budgit /budgit \
 && /budgit --version \
 && mkdir -p /rootfs/data /rootfs/etc/ssl/certs \
 && cp /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/ \
 && echo 'budgit:x:65532:65532:budgit:/data:/sbin/nologin' > /rootfs/etc/passwd \
 && echo 'budgit:x:65532:' > /rootfs/etc/group \
 && chown 65532:65532 /rootfs/data

# A shell and tools around the same binary, for CI jobs (GitLab runs scripts in the image).
FROM alpine:3.22 AS debug
RUN apk add --no-cache ca-certificates git curl jq bash \
 && adduser -D -u 65532 -h /data budgit
COPY --from=build /budgit /usr/local/bin/budgit
USER 65532:65532
WORKDIR /data
ENTRYPOINT ["budgit"]

FROM scratch AS runtime
COPY --from=build /rootfs/ /
COPY --from=build /budgit /usr/local/bin/budgit
ENV PATH=/usr/local/bin SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["budgit", "health", "--url", "http://127.0.0.1:8080", "--timeout", "4s"]
ENTRYPOINT ["budgit"]
CMD ["serve", "--db", "/data/budgit.db", "--listen", "0.0.0.0:8080"]
