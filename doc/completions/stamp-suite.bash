_stamp__suite() {
    local i cur prev opts cmd
    COMPREPLY=()
    if [[ "${BASH_VERSINFO[0]}" -ge 4 ]]; then
        cur="$2"
    else
        cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    prev="$3"
    cmd=""
    opts=""

    for i in "${COMP_WORDS[@]:0:COMP_CWORD}"
    do
        case "${cmd},${i}" in
            ",$1")
                cmd="stamp__suite"
                ;;
            *)
                ;;
        esac
    done

    case "${cmd}" in
        stamp__suite)
            opts="-i -r -p -S -o -c -d -L -K -A -R -h -V --is-reflector --remote-addr --remote-port --local-addr --local-port --config --count --send-delay --timeout --clock-source --error-scale --error-multiplier --clock-synchronized --auth-mode --hmac-key --hmac-key-file --hmac-key-dir --stateful-reflector --session-timeout --tlv-mode --verify-tlv-hmac --reflector-member-link-id --transport --max-pps --reflector-rate-burst --global-max-pps --allow-session --max-sessions --reflected-control-max-count --reflected-control-max-size --reflected-control-min-interval-ns --ssid --zero-ssid --padding --location --timestamp-info --direct-measurement --follow-up-telemetry --cos --dscp --ecn --access-report --access-return-code --dest-node-addr --return-path-cc --return-address --return-sr-mpls-labels --return-srv6-sids --micro-session-id --reflected-control-count --reflected-control-length --reflected-control-interval-ns --ber --ber-pattern --ber-padding-size --reflected-fixed-hdr --reflected-ipv6-ext-hdr --ipv6-dest-opt-len --tlv-code --tlv-opt --per-packet --output-format --report-interval --log-format --log-level --list-tlvs --metrics --metrics-addr --snmp --snmp-socket --user --workers --hwtstamp --gso --histogram --plot --help --version"
            if [[ ${cur} == -* || ${COMP_CWORD} -eq 1 ]] ; then
                COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
                return 0
            fi
            case "${prev}" in
                --remote-addr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -r)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --remote-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -p)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --local-addr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -S)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --local-port)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -o)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --config)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -c)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --send-delay)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -d)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                -L)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --clock-source)
                    COMPREPLY=($(compgen -W "NTP PTP" -- "${cur}"))
                    return 0
                    ;;
                -K)
                    COMPREPLY=($(compgen -W "NTP PTP" -- "${cur}"))
                    return 0
                    ;;
                --error-scale)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --error-multiplier)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --clock-synchronized)
                    COMPREPLY=($(compgen -W "true false" -- "${cur}"))
                    return 0
                    ;;
                --auth-mode)
                    COMPREPLY=($(compgen -W "A O" -- "${cur}"))
                    return 0
                    ;;
                -A)
                    COMPREPLY=($(compgen -W "A O" -- "${cur}"))
                    return 0
                    ;;
                --hmac-key)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hmac-key-file)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hmac-key-dir)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --session-timeout)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tlv-mode)
                    COMPREPLY=($(compgen -W "echo ignore" -- "${cur}"))
                    return 0
                    ;;
                --reflector-member-link-id)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --transport)
                    COMPREPLY=($(compgen -W "udp raw" -- "${cur}"))
                    return 0
                    ;;
                --max-pps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflector-rate-burst)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --global-max-pps)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --allow-session)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --max-sessions)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-max-count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-max-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-min-interval-ns)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ssid)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --zero-ssid)
                    COMPREPLY=($(compgen -W "continue stop" -- "${cur}"))
                    return 0
                    ;;
                --padding)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dscp)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ecn)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --access-report)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --access-return-code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --dest-node-addr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return-path-cc)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return-address)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return-sr-mpls-labels)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --return-srv6-sids)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --micro-session-id)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-count)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-length)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --reflected-control-interval-ns)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ber-pattern)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ber-padding-size)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --ipv6-dest-opt-len)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tlv-code)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --tlv-opt)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --output-format)
                    COMPREPLY=($(compgen -W "text json csv" -- "${cur}"))
                    return 0
                    ;;
                --report-interval)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --log-format)
                    COMPREPLY=($(compgen -W "text json" -- "${cur}"))
                    return 0
                    ;;
                --log-level)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --metrics-addr)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --snmp-socket)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --user)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --workers)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                --hwtstamp)
                    COMPREPLY=($(compgen -W "auto on off" -- "${cur}"))
                    return 0
                    ;;
                --gso)
                    COMPREPLY=($(compgen -W "on off" -- "${cur}"))
                    return 0
                    ;;
                --plot)
                    COMPREPLY=($(compgen -f "${cur}"))
                    return 0
                    ;;
                *)
                    COMPREPLY=()
                    ;;
            esac
            COMPREPLY=( $(compgen -W "${opts}" -- "${cur}") )
            return 0
            ;;
    esac
}

if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _stamp__suite -o nosort -o bashdefault -o default stamp-suite
else
    complete -F _stamp__suite -o bashdefault -o default stamp-suite
fi
