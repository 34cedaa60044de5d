# Sourced by the benchmark scripts: `one CMD...` prints "wall cpu" seconds of one run of CMD (its
# output kept in $work/stdout and $work/stderr; a failure prints them and exits), and `median`
# prints the median of the numbers on its standard input.
one() {
    local status=0 t
    local TIMEFORMAT='%R %U %S'
    t=$({ time "$@" > "$work/stdout" 2> "$work/stderr" || status=$?; } 2>&1)
    if [ "$status" != 0 ]; then
        echo "failed: $*" >&2
        cat "$work/stdout" "$work/stderr" >&2
        exit 1
    fi
    read -r wall user sys <<< "$t"
    echo "$wall $(echo "$user + $sys" | bc)"
}
median() { sort -n | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
