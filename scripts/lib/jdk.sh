# Sourced by the scripts: sets JDK to a JDK >= 22 (FFM is final from 22; the build targets 25).
# Order: $JAVA_HOME, then the newest under /usr/lib/jvm, then java on PATH.
jdk_major() { # prints the major version of $1/bin/java, or 0
  local v
  # the release file says it without starting a JVM (each java -version costs 50-100 ms)
  v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$1/release" 2>/dev/null || true)
  [ -n "$v" ] || v=$("$1/bin/java" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')
  echo "${v:-0}"
}
find_jdk() {
  local need=${1:-25} best="" best_v=0 c v
  for c in "${JAVA_HOME:-}" /usr/lib/jvm/* "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    [ -n "$c" ] && [ -x "$c/bin/java" ] && [ -x "$c/bin/javac" ] || continue
    v=$(jdk_major "$c")
    if [ "$v" -ge "$need" ] && [ "$v" -gt "$best_v" ]; then best=$c; best_v=$v; fi
    # an explicit JAVA_HOME that is new enough wins
    if [ "$c" = "${JAVA_HOME:-}" ] && [ "$v" -ge "$need" ]; then best=$c; break; fi
  done
  if [ -z "$best" ]; then
    echo "jvmm: no JDK $need or newer found (looked at \$JAVA_HOME, /usr/lib/jvm/*, PATH); install one or set JAVA_HOME" >&2
    return 1
  fi
  JDK=$best
  # Maven's bundled guava warns about sun.misc.Unsafe on JDK 24+; the warning is not ours to fix.
  [ "$best_v" -gt 0 ] || best_v=$(jdk_major "$best")
  if [ "$best_v" -ge 24 ]; then
    case "${MAVEN_OPTS:-}" in *sun-misc-unsafe*) ;; *) export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow" ;; esac
  fi
}
