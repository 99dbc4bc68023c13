# Shared by benchmarks/boot-time.sh and benchmarks/installer-time.sh (sourced): time a guest from power-on until a
# text appears on its serial console, under `vmportal run` and under qemu-system-i386 -accel tcg.
# The caller sets VMPORTAL (the CLI), MEM (MiB), PROMPT (the text) and TIMEOUT (seconds). run_vmportal appends the
# run's "JIT:" line to /tmp/vmportal-jit.$$.log; the caller removes /tmp/{vmportal,qemu}-boot.$$.* and that file.

now() { date +%s.%N; }
elapsed() { echo "$(now) $1" | awk '{printf "%.1f", $1 - $2}'; }
# CPU seconds (user + system) used so far by a running process: on this shared machine wall time depends on the
# load, CPU time much less.
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); split($0, f, " "); printf "%.1f", (f[12] + f[13]) / hz }' "/proc/$1/stat" 2>/dev/null; }

# vmportal: exits 0 as soon as the prompt appears on serial or screen.
run_vmportal() { # <args...> ; prints seconds (and CPU seconds) or "timeout"/"failed (rc)"
  local start rc cpu
  start=$(now)
  cpu=$( { TIMEFORMAT='%U %S'; time "$VMPORTAL" run --memory $MEM "$@" --until "$PROMPT" --timeout "$TIMEOUT" \
           >/tmp/vmportal-boot.$$.log 2>&1; echo $? >/tmp/vmportal-boot.$$.rc; } 2>&1 )
  rc=$(cat /tmp/vmportal-boot.$$.rc)
  grep -a 'JIT:' /tmp/vmportal-boot.$$.log | sed "s|^vmportal run: |$* : |" >> /tmp/vmportal-jit.$$.log
  case $rc in
    0) echo "$(elapsed "$start") ($(echo "$cpu" | awk '{printf "%.1f", $1 + $2}') CPU)" ;;
    2) echo "timeout (>${TIMEOUT} s)" ;;
    *) echo "failed (exit $rc: $(tail -c 200 /tmp/vmportal-boot.$$.log | tr '\n' ' '))" ;;
  esac
}

# qemu: watch its serial output for the prompt, then kill it.
run_qemu() { # <args...>
  local start log pid
  log=/tmp/qemu-boot.$$.log
  : > "$log"
  start=$(now)
  qemu-system-i386 -accel tcg -m $MEM -nographic -nic none "$@" </dev/null >"$log" 2>&1 &
  pid=$!
  local result="timeout (>${TIMEOUT} s)"
  while kill -0 $pid 2>/dev/null; do
    if grep -aqF "$PROMPT" "$log"; then result="$(elapsed "$start") ($(cpu_of $pid) CPU)"; break; fi
    if [ "$(elapsed "$start" | cut -d. -f1)" -ge "$TIMEOUT" ]; then break; fi
    sleep 0.05
  done
  kill $pid 2>/dev/null; wait $pid 2>/dev/null
  echo "$result"
}
