# Sourced by the scripts: ensure_jar builds target/jvmm.jar when it is missing or older than the
# sources (pom.xml, src/main, guests), then sets JAR. Needs JDK (scripts/lib/jdk.sh) and root.
ensure_jar() {
  JAR=$root/target/jvmm.jar
  if [ ! -f "$JAR" ] || [ -n "$(find "$root/pom.xml" "$root/src/main" "$root/guests" -newer "$JAR" -print -quit 2>/dev/null)" ]; then
    echo "jvmm: building $JAR ..." >&2
    (cd "$root" && JAVA_HOME=$JDK mvn -q -B -DskipTests -Djvmm.skipDist=true package) >&2 || { echo "jvmm: build failed" >&2; return 1; }
    rm -f "$root/target/jvmm.jsa" "$root/target/jvmm.aot"
  fi
}

# jvm_flags prints the options of scripts/lib/jvm-flags, one per line, without comments.
jvm_flags() {
  sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$root/scripts/lib/jvm-flags"
}
