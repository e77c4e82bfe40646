#!/bin/bash
# The guide's daily checks (its sections "Daily Maintenance" and "Error Handling
# Maintenance / Daily Error Handling Checks"), transcribed as they are written, for
# bench/bench_daily.py to time against the suite's daily run on the same lab.
#
# Changes from the guide, and only these:
# - paths, URLs and ports come from GUIDE_* environment variables (the bench sets them from the
#   lab's maintenance.toml) instead of the guide's /var/log/trading-agent, localhost:3000, ...;
# - the lab has no systemd: `systemctl is-active --quiet NAME` is `supervisorctl -c CONF status NAME`;
# - nothing is changed on the box, as the suite is run with --remediation=off: restarts, logrotate,
#   the diagnostics and ./scripts/send-alert.sh only print what they would do, and the cleanups
#   are `find ... -print` instead of `find ... -delete`;
# - ./scripts/tunnel-manager.sh test is a TCP connect to the tunnel's local end (bash /dev/tcp);
# - the exchange curl trusts the lab's CA (--cacert) and is silent (-s), as a cron job would be;
# - the disk check reads the lab's disk path(s) rather than /.
#
# Environment (all required):
#   GUIDE_LOG_DIR GUIDE_KNOWN_ERRORS GUIDE_DISK_PATHS (one per line) GUIDE_SUPERVISORCTL (argv,
#   one word per line) GUIDE_SERVICES (one per line) GUIDE_RETENTION ("dir|pattern|days" per line)
#   GUIDE_DASHBOARD_URL GUIDE_TUNNEL_HOST GUIDE_TUNNEL_PORT GUIDE_EXCHANGE_URL GUIDE_EXCHANGE_HOST
#   GUIDE_EXCHANGE_CA GUIDE_API_BASE

for name in GUIDE_LOG_DIR GUIDE_KNOWN_ERRORS GUIDE_DISK_PATHS GUIDE_SUPERVISORCTL GUIDE_SERVICES \
            GUIDE_RETENTION GUIDE_DASHBOARD_URL GUIDE_TUNNEL_HOST GUIDE_TUNNEL_PORT GUIDE_EXCHANGE_URL \
            GUIDE_EXCHANGE_HOST GUIDE_EXCHANGE_CA GUIDE_API_BASE; do
    if [ -z "${!name}" ]; then
        echo "guide_daily.sh: $name is not set" >&2
        exit 2
    fi
done

mapfile -t SUPERVISORCTL <<< "$GUIDE_SUPERVISORCTL"
mapfile -t SERVICES <<< "$GUIDE_SERVICES"
mapfile -t DISK_PATHS <<< "$GUIDE_DISK_PATHS"
mapfile -t RETENTION <<< "$GUIDE_RETENTION"
API="$GUIDE_API_BASE"

send_alert() { echo "  [alert] $*"; }
would() { echo "  [remediation off] would run: $*"; }

echo "🔍 Daily Health Check - $(date)"
echo "================================"

# Daily Maintenance 1: System Health Check
CPU_USAGE=$(top -bn1 | grep "Cpu(s)" | awk '{print $2}' | cut -d'%' -f1)
MEMORY_USAGE=$(free | grep Mem | awk '{printf("%.1f", $3/$2 * 100.0)}')

echo "💻 System Resources:"
echo "  CPU Usage: ${CPU_USAGE}%"
echo "  Memory Usage: ${MEMORY_USAGE}%"

if (( $(echo "$CPU_USAGE > 80" | bc -l) )); then
    echo "⚠️ HIGH CPU USAGE: ${CPU_USAGE}%"
    send_alert "High CPU usage detected: ${CPU_USAGE}%"
fi

if (( $(echo "$MEMORY_USAGE > 85" | bc -l) )); then
    echo "⚠️ HIGH MEMORY USAGE: ${MEMORY_USAGE}%"
    send_alert "High memory usage detected: ${MEMORY_USAGE}%"
fi

for disk_path in "${DISK_PATHS[@]}"; do
    DISK_USAGE=$(df -h "$disk_path" | awk 'NR==2{print $5}' | cut -d'%' -f1)
    echo "  Disk Usage ($disk_path): ${DISK_USAGE}%"
    if (( DISK_USAGE > 80 )); then
        echo "⚠️ HIGH DISK USAGE: ${DISK_USAGE}%"
        send_alert "High disk usage detected: ${DISK_USAGE}%"
    fi
done

# Daily Maintenance 2: Service Status Verification
for service in "${SERVICES[@]}"; do
    if "${SUPERVISORCTL[@]}" status "$service" > /dev/null 2>&1; then
        echo "✅ $service: Active"
    else
        echo "❌ $service: Inactive"
        send_alert "Service $service is not running"
        would sudo systemctl restart "$service"
    fi
done

# Daily Maintenance 3: Trading Performance Check
TRADES_TODAY=$(grep "TRADE_EXECUTED" "$GUIDE_LOG_DIR/trading-$(date +%Y-%m-%d).log" | wc -l)
PROFIT_TODAY=$(grep "PROFIT" "$GUIDE_LOG_DIR/trading-$(date +%Y-%m-%d).log" | awk '{sum+=$NF} END {print sum}')

echo "💰 Trading Performance:"
echo "  Trades Today: $TRADES_TODAY"
echo "  Profit Today: $PROFIT_TODAY USDT"

if [ "$TRADES_TODAY" -eq 0 ]; then
    send_alert "No trades executed today - check system"
fi

# Daily Maintenance 4: Log Rotation and Cleanup (dry: -print instead of -delete)
would sudo logrotate -f /etc/logrotate.d/trading-agent
for rule in "${RETENTION[@]}"; do
    IFS='|' read -r dir pattern days <<< "$rule"
    find "$dir" -name "$pattern" -mtime "+$days" -print
done

# Manual Daily Checks 1: Dashboard Verification
curl -f "$GUIDE_DASHBOARD_URL" > /dev/null 2>&1
if [ $? -eq 0 ]; then
    echo "✅ Dashboard accessible"
else
    echo "❌ Dashboard not accessible"
    would sudo systemctl restart trading-dashboard
fi

# Manual Daily Checks 2: SSH Tunnel Health (tunnel-manager.sh test: connect to the local end)
timeout 5 bash -c "exec 3<>/dev/tcp/$GUIDE_TUNNEL_HOST/$GUIDE_TUNNEL_PORT" 2> /dev/null
if [ $? -eq 0 ]; then
    echo "✅ SSH tunnel healthy"
else
    echo "❌ SSH tunnel issues detected"
    would ./scripts/tunnel-manager.sh restart
fi

# Manual Daily Checks 3: API Connectivity Test
curl -s --cacert "$GUIDE_EXCHANGE_CA" -H "Host: $GUIDE_EXCHANGE_HOST" "$GUIDE_EXCHANGE_URL" > /dev/null
if [ $? -eq 0 ]; then
    echo "✅ API connectivity OK"
else
    echo "❌ API connectivity issues"
    send_alert "Gate.io API connectivity issues detected"
fi

# Error Handling, daily 1: Error Rate Monitoring
echo "🔍 Daily Error Rate Check - $(date)"
echo "================================="

ERROR_RATE=$(curl -s "$API/api/errors/dashboard" | jq -r '.errorMetrics.errorRate')
CRITICAL_ERRORS=$(curl -s "$API/api/errors/dashboard" | jq -r '.errorMetrics.criticalErrors')
SYSTEM_HEALTH=$(curl -s "$API/api/health" | jq -r '.overallHealth')

echo "📊 Error Metrics:"
echo "  Error Rate: $ERROR_RATE/hour"
echo "  Critical Errors: $CRITICAL_ERRORS"
echo "  System Health: $SYSTEM_HEALTH%"

if (( $(echo "$ERROR_RATE > 10" | bc -l) )); then
    echo "⚠️ HIGH ERROR RATE: $ERROR_RATE/hour"
    would /usr/local/bin/trading-error-analysis
    send_alert "High error rate detected: $ERROR_RATE/hour"
fi

if (( $(echo "$SYSTEM_HEALTH < 80" | bc -l) )); then
    echo "⚠️ LOW SYSTEM HEALTH: $SYSTEM_HEALTH%"
    would /usr/local/bin/trading-health-check
    send_alert "Low system health: $SYSTEM_HEALTH%"
fi

# Error Handling, daily 2: Circuit Breaker Status Check
CIRCUIT_BREAKERS=$(curl -s "$API/api/errors/dashboard" | jq -r '.recoveryMetrics.circuitBreakersOpen')

echo "🔌 Circuit Breaker Status:"
echo "  Open Circuit Breakers: $CIRCUIT_BREAKERS"

if [ "$CIRCUIT_BREAKERS" -gt 0 ]; then
    echo "⚠️ CIRCUIT BREAKERS OPEN: $CIRCUIT_BREAKERS"
    curl -s "$API/api/errors/dashboard" | jq '.recoveryMetrics.circuitBreakerDetails'
    send_alert "$CIRCUIT_BREAKERS circuit breakers are open"
fi

# Error Handling, daily 3: Error Log Analysis
echo "📋 Error Log Analysis:"

if [ -f "$GUIDE_LOG_DIR/error-$(date +%Y-%m-%d).log" ]; then
    echo "Error counts by type:"
    grep -oE "(TE|AI|NE|SE)[0-9]{3}" "$GUIDE_LOG_DIR/error-$(date +%Y-%m-%d).log" | \
        sort | uniq -c | sort -nr | head -10

    NEW_ERRORS=$(grep -oE "(TE|AI|NE|SE)[0-9]{3}" "$GUIDE_LOG_DIR/error-$(date +%Y-%m-%d).log" | \
        sort -u | comm -23 - "$GUIDE_KNOWN_ERRORS")

    if [ -n "$NEW_ERRORS" ]; then
        echo "⚠️ NEW ERROR TYPES DETECTED:"
        echo "$NEW_ERRORS"
        send_alert "New error types detected: $NEW_ERRORS"
    fi
fi

exit 0
