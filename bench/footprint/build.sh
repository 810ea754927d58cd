# bench/footprint/build.sh: sourced by bench/run.sh after its own builds; builds what the
# footprint rows (bench/footprint/rows.py) need:
#   - libfleets in the `device` cargo profile for the host, and for the cross targets that
#     run.sh built (a smoke run reuses cross device builds that are already there);
#   - $work/fleets_device_loop: bench/c/loop.c against the device libfleets.so;
#   - $work/{fleets,fleets_device,curl}_wake: bench/footprint/wake.c;
#   - $work/device_sizes.json: stripped device libfleets.so per architecture.
# Uses run.sh's variables: root, target, work, smoke, cross_built, cflags, and say().

say "cargo build --profile device -p fleets (host)"
(cd "$root" && cargo build --locked -q --profile device -p fleets)
device_cross=()
for t in "${cross_built[@]}"; do
  if [[ $smoke == 1 ]]; then
    [[ -f "$target/$t/device/libfleets.so" ]] && device_cross+=("$t")
    continue
  fi
  case $t in aarch64*) pfx=aarch64-linux-gnu ;; armv7*) pfx=arm-linux-gnueabihf ;; *) continue ;; esac
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$t")
  say "cargo build --profile device -p fleets --target $t"
  (cd "$root" && env "CARGO_TARGET_${env_t}_LINKER=$pfx-gcc" "CC_${t//-/_}=$pfx-gcc" "AR_${t//-/_}=$pfx-ar" \
     cargo build --locked -q --profile device -p fleets --target "$t") && device_cross+=("$t")
done

say "C programs for the footprint rows (wake.c; loop.c against the device build)"
mkdir -p "$work/lib_device"
ln -sfn "$target/device/libfleets.so" "$work/lib_device/libfleets.so.0"
cc "${cflags[@]}" -DBACKEND_FLEETS -I"$root/include" "$here/c/loop.c" -o "$work/fleets_device_loop" \
   -L"$target/device" -lfleets -Wl,-rpath,"$work/lib_device" -lpthread
cc "${cflags[@]}" -DBACKEND_FLEETS -I"$root/include" "$here/footprint/wake.c" -o "$work/fleets_wake" \
   -L"$target/release" -lfleets -Wl,-rpath,"$work/lib"
cc "${cflags[@]}" -DBACKEND_FLEETS -I"$root/include" "$here/footprint/wake.c" -o "$work/fleets_device_wake" \
   -L"$target/device" -lfleets -Wl,-rpath,"$work/lib_device"
# shellcheck disable=SC2046
cc "${cflags[@]}" -DBACKEND_CURL "$here/footprint/wake.c" -o "$work/curl_wake" $(curl-config --libs)

{
  printf '{"libfleets": {"x86_64": %d' "$(stripped strip "$target/device/libfleets.so")"
  for t in "${device_cross[@]}"; do
    case $t in
      aarch64*) printf ', "aarch64": %d' "$(stripped aarch64-linux-gnu-strip "$target/$t/device/libfleets.so")" ;;
      armv7*) printf ', "armv7": %d' "$(stripped arm-linux-gnueabihf-strip "$target/$t/device/libfleets.so")" ;;
    esac
  done
  printf '}}\n'
} >"$work/device_sizes.json"
rm -f "$work/stripped.tmp"
