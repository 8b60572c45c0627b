#!/bin/sh
# /init of the deepmem dataset guest (busybox ash, PID 1). Parameters come on the kernel command line:
#   dm_seed dm_procs dm_threads dm_files dm_exitpct dm_churn   workload (see dmwork.c)
#   dm_mods=a,b,c    modules from /lib/modules/ to insmod (uncompressed by the host)
#   dm_nonce         echoed in the markers so the host never matches a stale log
# Serial ports: ttyS0 console and control, ttyS1 /proc/kallsyms, ttyS2 the guest view (dmview).
# Markers on ttyS0: "DEEPMEM-BOOTED nonce", "DEEPMEM-SETTLED nonce", "DEEPMEM-READY nonce kallsyms=N",
# or "DEEPMEM-FAILED nonce reason". After READY this shell only blocks on the console: nothing in the
# guest may change between the view and the dump.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp

for kv in $(cat /proc/cmdline); do
  case "$kv" in
    dm_*=*) eval "${kv%%=*}='${kv#*=}'" ;;
  esac
done

fail() {
  echo "DEEPMEM-FAILED ${dm_nonce:-?} $*"
  while :; do read -r _ ; done
}

echo "DEEPMEM-BOOTED ${dm_nonce:-?} uptime=$(cut -d' ' -f1 /proc/uptime)"
ifconfig lo 127.0.0.1 up || fail "ifconfig lo"

if [ -n "${dm_mods:-}" ]; then
  for m in $(echo "$dm_mods" | tr ',' ' '); do
    insmod "/lib/modules/$m.ko" || fail "insmod $m"
  done
fi

dmwork "${dm_seed:-1}" "${dm_procs:-40}" "${dm_threads:-4}" "${dm_files:-8}" "${dm_exitpct:-20}" "${dm_churn:-256}" \
  || fail "dmwork"
echo "DEEPMEM-SETTLED ${dm_nonce:-?} uptime=$(cut -d' ' -f1 /proc/uptime)"

echo 0 > /proc/sys/kernel/kptr_restrict
nsyms=$(wc -l < /proc/kallsyms)
# gzip first: the emulated UART moves ~300 KB/s and kallsyms is ~4 MB (the host gunzips it)
gzip -1 -c /proc/kallsyms | dmview --copy - /dev/ttyS1 || fail "kallsyms copy"
up=$(cut -d' ' -f1 /proc/uptime)
# From here on nothing may fork or open files: the view must equal the dump.
dmview --out /dev/ttyS2 || fail "dmview"
echo "DEEPMEM-READY ${dm_nonce:-?} kallsyms=$nsyms uptime=$up"
# Block on the console (its input never delivers anything) without forking: the host dumps now.
while :; do read -r _ ; done
