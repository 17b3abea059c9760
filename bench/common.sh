# Shared by bench/run.sh and bench/cluster.sh (sourced): wrk runs that also read the server's
# CPU time, and medians. Expects CONNS, DURATION, LOAD_CPU and TICKS to be set.

# The CPU time of process $1 so far, in clock ticks (user + system, all its threads).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# load PID URL [lua] -> "rps p50_us p99_us non2xx server_cpu_us_per_request"; the
# environment passes CRED_* and TARGET_PATH to the lua script.
load() {
  local out before after
  before=$(cpu_ticks "$1")
  out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency ${3:+-s "$3"} "$2")
  after=$(cpu_ticks "$1")
  echo "$out" | awk -v ticks=$((after - before)) -v hz="$TICKS" '
    function us(v) { if (v ~ /us$/) return v+0; if (v ~ /ms$/) return (v+0)*1000; if (v ~ /s$/) return (v+0)*1000000; return v }
    /requests in/ { total=$1 }
    /Requests\/sec/ { rps=$2 }
    $1=="50%" { p50=us($2) }
    $1=="99%" { p99=us($2) }
    /Non-2xx/ { bad=$5 }
    END { printf "%s %s %s %s %.2f\n", rps, p50, p99, (bad==""?0:bad), (total > 0 ? ticks / hz * 1000000 / total : 0) }'
}

# The median: the middle value, or the mean of the two middle ones for an even count.
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
col() { awk -v c="$2" '{print $c}' "$1" | median; } # file column -> its median
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }
# paired A B COL -> "median (95% lo-hi; rounds min-max)" of the per-round ratios B/A of
# column COL: line r of each file is round r, so each ratio compares two rows measured
# seconds apart, and a VM that gets slower or faster between rounds moves both sides of it
# alike. lo-hi is a confidence interval of at least 95% for that median, from the rounds' own
# ratios: the ones ranked lo = round((n - 1.96 sqrt n) / 2) and n + 1 - lo (order statistics:
# no assumption about how the ratios spread, only that rounds are independent; a VM that
# drifts across rounds makes it too narrow). It needs 6 rounds or more. On a noisy VM it is
# the figure to compare with a target: the same code's median moves by more than a change's
# effect from one run to the next.
paired() {
  paste -d' ' "$1" "$2" | awk -v c="$3" '{n = NF / 2; if ($c > 0) printf "%.4f\n", $(n + c) / $c}' | sort -n |
    awk '{a[NR] = $1} END {if (NR == 0) {print "-"; exit} m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      lo = int((NR - 1.96 * sqrt(NR)) / 2 + 0.5); hi = NR + 1 - lo
      ci = (lo >= 1) ? sprintf("95%% %.2f-%.2f; ", a[lo], a[hi]) : ""
      printf "%.2f (%srounds %.2f-%.2f)", m, ci, a[1], a[NR]}'
}
