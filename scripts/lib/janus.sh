# Sourced by the benchmark scripts: Janus with only its HTTP transport and AudioBridge plugin,
# configured in a folder of its own.
#
#   start_janus DIR HTTP_PORT   writes DIR/janus.jcfg and the plugin's and transport's files,
#                               starts Janus (log in DIR/janus.log), sets janus_pid.
#
# Plain-RTP participants use 20000-29999 of 127.0.0.1; WebRTC peers ICE on 40000-49999 of the
# machine's interfaces; no session timeouts.
start_janus() {
    local conf="$1" port="$2" lib
    lib="$(dirname "$(dpkg -L janus | grep -m1 '/plugins/libjanus_audiobridge.so$')")/.."
    mkdir -p "$conf/plugins" "$conf/transports" "$conf/events" "$conf/loggers"
    ln -sf "$lib/plugins/libjanus_audiobridge.so" "$conf/plugins/"
    ln -sf "$lib/transports/libjanus_http.so" "$conf/transports/"
    cat > "$conf/janus.jcfg" <<JCFG
general: {
	configs_folder = "$conf"
	plugins_folder = "$conf/plugins"
	transports_folder = "$conf/transports"
	events_folder = "$conf/events"
	loggers_folder = "$conf/loggers"
	debug_level = 3
	session_timeout = 0
}
certificates: {
}
media: {
	rtp_port_range = "40000-49999"
}
nat: {
	nice_debug = false
}
JCFG
    cat > "$conf/janus.plugin.audiobridge.jcfg" <<JCFG
general: {
	events = false
	local_ip = "127.0.0.1"
	rtp_port_range = "20000-29999"
}
JCFG
    cat > "$conf/janus.transport.http.jcfg" <<JCFG
general: {
	json = "plain"
	base_path = "/janus"
	http = true
	ip = "127.0.0.1"
	port = $port
	https = false
}
admin: {
	admin_http = false
}
JCFG
    janus --config="$conf/janus.jcfg" --configs-folder="$conf" --disable-colors \
        > "$conf/janus.log" 2>&1 &
    janus_pid=$!
}
