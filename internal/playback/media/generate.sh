#!/usr/bin/env bash
# Regenerates the demo videos served by the playback service:
#   assets/demo-1/video.webm  test pattern (testsrc2), 440 Hz tone
#   assets/demo-2/video.webm  drifting colour gradients, 523 Hz tone
#   assets/demo-3/video.webm  Game of Life in blocky cells, 659 Hz tone
# Each is 24 s of 640x360 at 24 fps, VP9 video and Opus audio in WebM
# (Chromium and Firefox play it; TestChromiumPlays checks Chromium), a
# keyframe every 2 s for quick seeking, about 0.4-0.7 MB each. The tone beeps
# once a second so that audio/video sync is easy to check. The files are
# committed and embedded in the binary (go:embed); rerun this only to change
# them. The multithreaded encoder may produce slightly different bytes from
# run to run.
#
# Requires ffmpeg with libvpx and libopus (Debian: apt-get install ffmpeg).
# Usage: bash internal/playback/media/generate.sh
set -euo pipefail
cd "$(dirname "$0")"

command -v ffmpeg >/dev/null || { echo "generate.sh: ffmpeg not found (apt-get install -y ffmpeg)" >&2; exit 1; }

duration=24
size=640x360
rate=24
font=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf

# label prints a drawtext filter naming the asset, or nothing when the
# font is missing (the video is then the bare pattern).
label() {
  if [[ -f "$font" ]]; then
    printf ",drawtext=fontfile=%s:text='Marquee  %s':fontsize=28:fontcolor=white:box=1:boxcolor=black@0.55:boxborderw=10:x=(w-text_w)/2:y=h-th-28" "$font" "$1"
  fi
}

# encode ASSET VIDEO_SOURCE TONE_HZ
encode() {
  local asset=$1 source=$2 tone=$3
  mkdir -p "assets/$asset"
  # Two-pass constrained-quality VP9: -crf bounds quality, -b:v caps the
  # bitrate; -row-mt and -cpu-used 2 keep the encode to a minute or two.
  local common=(-hide_banner -loglevel error -y
    -f lavfi -i "${source}$(label "$asset"),format=yuv420p"
    -f lavfi -i "sine=frequency=${tone}:beep_factor=2:sample_rate=48000:duration=${duration}"
    -t "$duration" -map 0:v -map 1:a
    -c:v libvpx-vp9 -crf 38 -b:v 160k -g 48 -keyint_min 48 -row-mt 1 -cpu-used 2 -tile-columns 1
    -c:a libopus -b:a 48k -ac 2)
  local log
  log=$(mktemp -d)
  ffmpeg "${common[@]}" -pass 1 -passlogfile "$log/pass" -an -f webm /dev/null
  ffmpeg "${common[@]}" -pass 2 -passlogfile "$log/pass" -f webm "assets/$asset/video.webm"
  rm -rf "$log"
  echo "assets/$asset/video.webm: $(wc -c <"assets/$asset/video.webm") bytes"
}

encode demo-1 "testsrc2=size=${size}:rate=${rate}:duration=${duration}" 440
encode demo-2 "gradients=size=${size}:rate=${rate}:duration=${duration}:speed=0.02:seed=7:n=4" 523.25
encode demo-3 "life=size=160x90:rate=12:mold=20:ratio=0.15:seed=42:life_color=#ffcc33:death_color=#334488:mold_color=#112244,scale=${size/x/:}:flags=neighbor,fps=${rate}" 659.25
