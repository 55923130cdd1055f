"""Words the host tools show people, in Chinese (first) and English.

One catalogue for every tool that talks to a person (diag, the service report, the
calibration certificate, labels, flash, and `gasguard notify`):

    from gasguard_tools import i18n
    lang = i18n.resolve(args.lang)          # --lang, else the locale, else zh
    i18n.t("state", lang)                   # a label
    i18n.fault("cal_missing", lang)         # '未校准 (cal_missing)' / 'not calibrated (cal_missing)'
    i18n.event(ev, lang)                    # a log event as a sentence, codes beside it

The device keeps its text short (codes); the sentences live here. A code this catalogue does
not know is shown as the code itself, never dropped. docs/i18n.md says how to add words.
"""

import datetime
import os

LANGS = ("zh", "en")
DEFAULT = "zh"  # the product is sold in China


def default_lang(environ=None):
    """The locale's language if it is one we have (LC_ALL, LC_MESSAGES, LANG), else zh."""
    env = os.environ if environ is None else environ
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        val = (env.get(var) or "").lower()
        if not val:
            continue
        if val.startswith("zh"):
            return "zh"
        if val.startswith("en"):
            return "en"
        if val not in ("c", "posix", "c.utf-8", "c.utf8"):
            return DEFAULT
    return DEFAULT


def resolve(lang=None):
    return lang if lang in LANGS else default_lang()


def add_argument(p):
    p.add_argument("--lang", choices=LANGS, default=None,
                   help="language of the output: zh or en (default: from the locale, else zh)")


# ------------------------------------------------------------------ labels
TEXT = {
    "device_id": ("设备标识", "device id"),
    "not_provisioned": ("（未写入标识）", "(not provisioned)"),
    "serial_model": ("序列号 / 型号", "serial / model"),
    "firmware": ("固件", "firmware"),
    "tier_profile": ("档次 / 报警标准", "tier / profile"),
    "kind_tier": ("类型 / 档次", "kind / tier"),
    "uptime": ("运行时间", "uptime"),
    "reset_boots": ("复位原因 / 启动次数", "reset cause / boots"),
    "free_heap": ("空闲内存", "free heap"),
    "bytes": ("字节", "bytes"),
    "state": ("状态", "state"),
    "ready": ("正常（就绪）", "READY"),
    "warming": ("预热中 / 未就绪", "warming up / not ready"),
    "alarm_fault": ("  报警 / 故障", "  alarm / fault"),
    "faults": ("故障", "faults"),
    "none": ("无", "none"),
    "relay": ("继电器", "relay"),
    "on": ("吸合", "ON"),
    "off": ("断开", "off"),
    "valve_links": ("联动阀门", "valve links"),
    "none_configured": ("未配置", "none configured"),
    "interlock_cause": ("联动原因", "interlock cause"),
    "outbox_depth": ("待发消息", "outbox depth"),
    "platform": ("平台", "platform"),
    "online": ("在线", "online"),
    "offline": ("离线", "OFFLINE"),
    "time_synced": ("时间已同步", "time synced"),
    "time_not_synced": ("时间未同步", "time not synced"),
    "last_errors": ("最近错误", "last errors"),
    "warming_up": ("预热中", "warming up"),
    "dose": ("剂量", "dose"),
    "raw": ("原始", "raw"),
    "peak": ("峰值", "peak"),
    "valve": ("阀门", "valve"),
    "last_close": ("上次关阀", "last close"),
    "why": ("原因说明", "why"),
    "link": ("无线链路", "link"),
    "pairing_failed": ("配对", "pairing"),
    "rejected": ("拒收", "rejected"),
    "pressure": ("压力", "pressure"),
    "flow": ("流量", "flow"),
    "no_flow_input": ("（无流量输入）", "(no flow input)"),
    "supply": ("电源", "supply"),
    "counters": ("计数", "counters"),
    "seq": ("序号", "seq"),
    "boot": ("启动", "boot"),
    "time": ("时间", "time"),
    "since_boot": ("启动后", "since boot"),
    "event": ("事件", "event"),
    "details": ("详情", "details"),
    "last_close_in_log": ("本日志中最后一次关阀", "last close in this log"),
    "at_boot_after": ("第 {boot} 次启动，上电后 {t}", "at boot {boot}, {t} after power-on"),
    "alarm_none": ("无", "none"),
    "alarm_low": ("低报（一级）", "LOW (level 1)"),
    "alarm_high": ("高报（二级）", "HIGH (level 2)"),
    "yes": ("是", "yes"),
    "no": ("否", "no"),
    # service report
    "service_report": ("维修服务报告", "Service report"),
    "device": ("设备", "Device"),
    "serial_number": ("序列号", "Serial number"),
    "model_kind": ("型号 / 类型", "Model / kind"),
    "overall": ("总体", "Overall"),
    "last_reset_cause": ("上次复位原因", "Last reset cause"),
    "boot_count": ("启动次数", "Boot count"),
    "relay_interlock": ("继电器 / 联动", "Relay / interlock"),
    "no_shutoff": ("无关阀请求", "no shut-off request"),
    "gas_readings": ("气体读数", "Gas readings"),
    "gas": ("气体", "Gas"),
    "now": ("当前", "Now"),
    "peak_since_reset": ("复位后峰值", "Peak since reset"),
    "history": ("浓度历史", "Concentration history"),
    "no_history": ("尚无浓度历史（设备自上次启动起每 {period} 秒记录一点）。",
                   "No concentration history yet (the device keeps one point per {period} s "
                   "since its last boot)."),
    "minutes_now": ("分钟（0 = 现在）", "minutes (0 = now)"),
    "peak_per": ("每 {period} 秒峰值", "peak per {period} s"),
    "recent_events": ("最近事件", "Recent events"),
    "calibration": ("标定", "Calibration"),
    "channel": ("通道", "Channel"),
    "calibrated": ("标定日期", "Calibrated"),
    "by": ("标定人", "By"),
    "span_gas": ("标准气", "Span gas"),
    "no_valid_cal": ("无有效标定", "no valid calibration"),
    "notes": ("维修人员备注", "Technician's notes"),
    "technician": ("维修人员", "Technician"),
    "date": ("日期", "Date"),
    "customer_signature": ("客户签字", "Customer signature"),
    "alarm_active": ("报警中", "ALARM ACTIVE"),
    "fault_badge": ("故障", "FAULT"),
    "warming_badge": ("预热中", "WARMING UP"),
    "normal": ("正常运行", "NORMAL OPERATION"),
    "generated": ("生成于 {when}，gasguard 工具 {version}", "Generated {when} by gasguard tools {version}"),
    "brand_sub": ("燃气泄漏探测与安全切断", "gas leak detection and safety shut-off"),
    "ch4": ("甲烷 (CH\u2084)", "Methane (CH\u2084)"),
    "co": ("一氧化碳 (CO)", "Carbon monoxide (CO)"),
    # calibration certificate
    "cert_title": ("标定证书", "Calibration certificate"),
    "cert_subtitle": ("零点/量程两点标定", "two-point zero/span calibration"),
    "cert_pass": ("合格", "PASS"),
    "cert_fail": ("不合格", "FAIL"),
    "cert_not_valid_for_release": ("标定通过，但不可放行", "calibrated, NOT VALID FOR RELEASE"),
    "cert_result": ("结果", "Result"),
    "cert_number": ("证书编号", "Certificate no."),
    "cert_issued": ("签发时间", "Issued"),
    "cert_due": ("下次标定日期", "Next calibration due"),
    "cert_operator": ("标定人员", "Operator"),
    "cert_ambient": ("环境温湿度", "Ambient conditions"),
    "cert_not_recorded": ("未记录", "not recorded"),
    "cert_identity": ("标识状态", "Identity"),
    "cert_locked": ("已锁定", "locked"),
    "cert_unlocked": ("未锁定", "NOT locked"),
    "cert_zero_gas": ("零点气", "Zero gas"),
    "cert_lot": ("标准气批号", "Span gas lot"),
    "cert_gas_cert": ("标准气证书编号", "Span gas certificate"),
    "cert_gas_u": ("标准气不确定度", "Span gas uncertainty"),
    "cert_instrument": ("参考仪器", "Reference instrument"),
    "cert_stability": ("稳定判据", "Stability criterion"),
    "cert_stability_text": ("{s} 秒内信号变化不超过 {uv} µV", "signal within {uv} µV over {s} s"),
    "cert_acceptance": ("验收判据", "Acceptance"),
    "cert_acceptance_text": ("通标准气时读数与标准值之差不超过 {pct} %",
                             "reading at span gas within {pct} % of the reference"),
    "cert_reference": ("标准值", "Reference"),
    "cert_zero": ("零点", "Zero"),
    "cert_span": ("量程", "Span"),
    "cert_correction": ("量程修正", "Span correction"),
    "cert_reads": ("示值", "Reads"),
    "cert_deviation": ("偏差", "Deviation"),
    "cert_restored": ("已恢复原标定", "previous calibration restored"),
    "cert_seconds": ("通道开始后秒数", "seconds since start of channel"),
    "cert_not_calibrated": ("未完成标定", "Not calibrated"),
    "cert_certificate": ("证书", "Certificate"),
    "cert_dut": ("被标定设备", "Device under calibration"),
    "cert_method": ("标准气与方法", "Reference gases and method"),
    "cert_results": ("结果", "Results"),
    "cert_response": ("标定过程响应曲线", "Response during calibration"),
    "cert_traceable": ("证书编号含设备标识；数据摘要 SHA-256：",
                       "The number carries the device identifier; SHA-256 of the record:"),
    "cert_calibrated_by": ("标定人", "Calibrated by"),
    "cert_checked_by": ("审核（质检）", "Checked by (QA)"),
    "cert_uncertainty_text": ("扩展不确定度 U 由合成标准不确定度（标准气证书、验证偏差、0.1 ppm 显示分辨力）乘以包含因子 k = 2 得到，"
                              "对应约 95 % 的包含概率（JJF 1059.1 / GUM）。",
                              "see the certificate's uncertainty statement"),
    "cert_block_device_provisioned": ("设备未写入标识", "the device has no identity (not provisioned)"),
    "cert_block_identity_locked": ("设备标识未锁定", "the device identity is not locked"),
    "cert_block_span_gas_lot": ("未记录标准气批号", "span gas lot not recorded"),
    "cert_block_span_gas_certificate": ("未记录标准气证书编号", "span gas certificate not recorded"),
    "cert_block_ambient": ("未记录环境温度和湿度", "ambient temperature and humidity not recorded"),
    "cert_block_operator": ("未填写标定人员", "operator not named"),
    "cert_block_reference_instrument": ("未记录参考仪器", "reference instrument not recorded"),
    # labels (short: they fit a 50 x 30 mm label)
    "label_detector": ("可燃气体探测器", "Gas leak detector"),
    "label_valve": ("自闭阀控制器", "Self-closing valve controller"),
    "label_model": ("型号", "Model"),
    "label_mfg": ("生产日期", "Mfg"),
    "label_sn": ("序列号", "S/N"),
    "label_hw": ("硬件", "HW"),
    "tier_L": ("低", "LOW"),
    "tier_M": ("中", "MID"),
    "tier_H": ("高", "HIGH"),
    # flash
    "free_heap_after": ("部署并复位后空闲内存：{free} 字节", "free heap after deploy and reset: {free} bytes"),
}


# CJK fonts the documents and labels use (Debian: fonts-wqy-microhei, fonts-noto-cjk);
# GASGUARD_CJK_FONT names another file. Pillow's bundled font and DejaVu have no CJK glyphs.
CJK_FONT_FILES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc",
)


def cjk_font_file():
    """A font file with Chinese glyphs, or None when the machine has none."""
    env = os.environ.get("GASGUARD_CJK_FONT")
    for cand in ([env] if env else []) + list(CJK_FONT_FILES):
        if cand and os.path.isfile(cand):
            return cand
    return None


def t(key, lang, **kw):
    pair = TEXT.get(key)
    if pair is None:
        return key
    s = pair[0] if lang == "zh" else pair[1]
    return s.format(**kw) if kw else s


# ------------------------------------------------------------------ codes
# Fault codes (docs/alarms.md, docs/valve.md, docs/interlock.md): what it means, for a person.
FAULTS = {
    "sensor_open": ("传感器开路（接线断开或元件损坏）", "sensor open circuit (wiring broken or element failed)"),
    "sensor_short": ("传感器短路", "sensor short circuit"),
    "sensor_stuck": ("传感器读数长时间不变（可能失效）", "sensor reading frozen (sensor may have failed)"),
    "sensor_comm": ("传感器通信失败", "no answer from the sensor module"),
    "out_of_range": ("读数超出物理可能范围", "physically implausible reading"),
    "cal_missing": ("未标定或标定记录无效（按标称曲线工作）",
                    "not calibrated or calibration record invalid (running on the nominal curve)"),
    "end_of_life": ("传感器到达使用寿命，需更换", "sensor at the end of its service life: replace it"),
    "supply_low": ("电源电压过低", "supply voltage low"),
    "interlock_missing": ("未连接联动切断阀", "no shut-off valve interlock attached"),
    "interlock_open_circuit": ("联动输出开路（阀门线圈未接）", "interlock output open circuit (valve coil not connected)"),
    "link_lost": ("与对端设备的无线链路中断", "radio link to the paired device lost"),
    "pair_failed": ("配对失败", "pairing failed"),
    "valve_stuck_open": ("阀门未能关闭（多次脱扣后仍开）", "valve did not close (still open after the trip retries)"),
    "coil_open_circuit": ("脱扣线圈开路", "trip coil open circuit"),
    "pressure_sensor": ("压力传感器故障", "pressure sensor fault"),
    "config_invalid": ("存储的配置无效，按启动配置运行", "stored config refused: running on the boot config"),
    "config_nomem": ("内存不足，配置未能按设定建立：一氧化碳报警表降为粗表（报警不会推迟）或按后备配置运行",
                     "not enough memory to build the config as set: a coarser CO rate table "
                     "(alarms no later) or a fallback config"),
    "identity_corrupt": ("设备标识记录无法读取（设备仍报警，但不注册）",
                         "identity record unreadable (the device still alarms; it does not register)"),
    "link_invalid": ("无线联动未能启用（设置或配对记录无效），设备无联动运行",
                     "radio interlock not started (settings or pairing record refused): running "
                     "without it"),
    "platform_invalid": ("平台上报未能启用（网络或上报设置无效），设备不上报运行",
                         "platform reporting not started (network or report settings refused): "
                         "running without it"),
    "modbus_invalid": ("RS-485 Modbus 未能启用（设置无效），设备无总线运行",
                       "RS-485 Modbus not started (settings refused): running without it"),
    "identity_invalid": ("标识设置（identity 节）无效，主动标识按默认值注册和发送心跳",
                         "identity settings refused: the active identifier registers and sends "
                         "heartbeats on its defaults"),
    "store_failed": ("写入闪存失败", "writing to flash failed"),
    "connection_lost": ("与平台的连接中断", "connection to the platform lost"),
}

# Why a valve closed, in the words a technician needs on site (docs/valve.md).
CAUSES = {
    "under_pressure": ("管道压力低于欠压点（上游停气？）；恢复供气后手动复位开阀",
                       "the line pressure fell below the under-pressure point (supply interrupted "
                       "upstream?); reopen by hand once the supply is back"),
    "over_pressure": ("管道压力高于超压点（调压器故障？）；开阀前请检查调压器",
                      "the line pressure rose above the over-pressure point (regulator fault?); "
                      "have the regulator checked before reopening"),
    "over_flow": ("流量超过过流点（软管脱落、管道破裂？）；开阀前先查明泄漏",
                  "the flow exceeded the excess-flow point (hose off, pipe break?); find the leak "
                  "before reopening"),
    "interlock": ("燃气探测器请求关阀（请查看探测器日志）", "a gas detector asked for the close (see its log)"),
    "link_lost": ("探测器无线无应答（失效安全关阀）", "the detector stopped answering on the radio (fail-safe close)"),
    "manual": ("手动或按请求关阀（按钮、维修口或平台）",
               "closed by hand or on request (button, service console or platform)"),
    "unknown": ("无传感器读数可解释（未装压力/流量传感器？）",
                "no sensor reading explains it (no pressure/flow sensor fitted?)"),
}

# Why a pairing window ended without a pairing: the short code of the link event pair_failed
# (docs/interlock.md "When a pairing fails"), what the person should do next.
PAIR_REASONS = {
    "no_answer": ("配对窗口内对端设备没有应答：请在 60 秒内同时长按两台设备的按键",
                  "no device answered in the pairing window: hold both devices' buttons "
                  "within the same minute"),
    "no_confirm": ("阀门已应答，但探测器没有确认：请在两台设备上重新同时配对",
                   "the valve answered but the detector never confirmed: pair both again"),
    "conflict": ("窗口内有第二台设备应答（附近有其他设备在配对或有人干扰），未配对；"
                 "请远离其他正在配对的设备后重试",
                 "a second device answered in the window (another pairing nearby, or someone "
                 "interfering): not paired; try again away from other devices being paired"),
    "forged": ("收到无效的配对应答（密钥校验失败），未配对", "an invalid pairing answer (its key did "
               "not verify): not paired"),
    "linked": ("已有正常工作的配对，单侧按键不会替换它：请同时按两台设备，或在出厂模式下按键",
               "a working pairing is not replaced from one side: press both devices, or press "
               "in factory mode entered with the button"),
    "no_memory": ("内存不足，无法配对（报警功能不受影响）：请稍后重试",
                  "not enough memory to pair now (the alarm is not affected): try again later"),
    "no_address": ("无线模块没有地址，无法配对：请检修无线模块",
                   "the radio has no address, pairing is impossible: have the radio checked"),
}

EVENTS = {
    "alarm": ("报警", "alarm"),
    "boot": ("启动", "boot"),
    "button": ("按键", "button"),
    "calibration": ("标定", "calibration"),
    "config": ("配置变更", "config change"),
    "fault": ("故障", "fault"),
    "hush": ("消音", "hush"),
    "identity": ("设备标识", "identity"),
    "interlock": ("联动", "interlock"),
    "link": ("无线链路", "link"),
    "ready": ("预热完成", "ready"),
    "reboot": ("重启", "reboot"),
    "relay": ("继电器", "relay"),
    "reset": ("复位", "reset"),
    "self_test": ("自检", "self-test"),
    "valve": ("阀门", "valve"),
    "warmup": ("预热开始", "warm-up"),
}

WORDS = {  # values that appear in events
    "on": ("出现", "on"), "off": ("消除", "cleared"), "start": ("开始", "started"),
    "end": ("结束", "ended"), "pass": ("通过", "pass"), "fail": ("未通过", "fail"),
    "open": ("开", "open"), "closed": ("关", "closed"), "ch4": ("甲烷", "methane"),
    "co": ("一氧化碳", "CO"), "aborted": ("中止", "aborted"),
}

FIELDS = {
    "gas": ("气体", "gas"), "state": ("状态", "state"), "level": ("级别", "level"),
    "code": ("代码", "code"), "cause": ("原因", "cause"), "result": ("结果", "result"),
    "faults": ("故障", "faults"), "ppm_x10": ("浓度×10", "ppm x10"), "source": ("来源", "source"),
    "sink": ("输出", "sink"), "reason": ("原因", "reason"),
}


def _pick(table, code, lang):
    pair = table.get(code)
    if pair is None:
        return None
    return pair[0] if lang == "zh" else pair[1]


def fault(code, lang):
    """'未标定… (cal_missing)': the sentence with the code beside it (the code alone if
    unknown). A channel's fault comes as 'gas:code' (status) and keeps the gas in front."""
    code = str(code)
    where, _, bare = code.rpartition(":")
    text = _pick(FAULTS, bare, lang)
    if not text:
        return code
    if where:
        text = "%s%s%s" % (word(where, lang), "：" if lang == "zh" else ": ", text)
    return "%s (%s)" % (text, code)


def pair_reason(code, lang):
    """'配对失败：… (no_answer)': why a pairing window failed, with its code (the code alone
    if unknown)."""
    text = _pick(PAIR_REASONS, code, lang)
    if not text:
        return str(code)
    return "%s%s%s (%s)" % (FAULTS["pair_failed"][0 if lang == "zh" else 1],
                            "：" if lang == "zh" else ": ", text, code)


def cause(code, lang):
    return _pick(CAUSES, code, lang)


def word(value, lang):
    text = _pick(WORDS, value, lang) if isinstance(value, str) else None
    return text or str(value)


def event_name(name, lang):
    text = _pick(EVENTS, name, lang)
    return "%s (%s)" % (text, name) if text else str(name)


def describe(ev, lang="en"):
    """An event's details: faults as sentences with their codes, other fields labelled."""
    skip = ("event", "seq", "boot", "t", "time", "wall")
    sep = "；" if lang == "zh" else "; "
    out = []
    if ev.get("event") == "fault" and ev.get("code"):
        out.append("%s %s" % (fault(ev["code"], lang), word(ev.get("state"), lang)))
        skip = skip + ("code", "state")
    if ev.get("event") == "link" and ev.get("state") == "pair_failed":
        out.append(pair_reason(ev.get("reason"), lang))
        skip = skip + ("state", "reason")
    if ev.get("event") == "valve" and ev.get("cause") and cause(ev["cause"], lang):
        out.append("%s (%s)" % (cause(ev["cause"], lang), ev["cause"]))
        skip = skip + ("cause",)
    for k in sorted(ev):
        if k in skip:
            continue
        v = ev[k]
        if isinstance(v, list):
            v = ",".join(fault(x, lang) if k == "faults" else str(x) for x in v) or "-"
        elif v is True or v is False:
            v = t("yes" if v else "no", lang)
        else:
            v = word(v, lang)
        label = _pick(FIELDS, k, lang) or k
        out.append("%s=%s" % (label, v))
    return sep.join(out)


def fmt_uptime(s):
    if s is None:
        return "?"
    d, s = divmod(int(s), 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return ("%dd " % d if d else "") + "%02d:%02d:%02d" % (h, m, s)


def wall_time(ev):
    """The event's wall-clock time where the device has one (a synced clock stamps events
    with 'time' or 'wall', seconds since 1970 UTC), in local time; None otherwise."""
    for key in ("time", "wall"):
        v = ev.get(key)
        if isinstance(v, (int, float)) and v > 1.5e9:
            return datetime.datetime.fromtimestamp(v).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return None


def when(ev):
    """Wall-clock time if the device stamped one, else the time since boot."""
    return wall_time(ev) or fmt_uptime(ev.get("t"))
