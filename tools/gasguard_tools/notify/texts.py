"""Notification texts in Chinese (default) and English.

    render(ctx, lang, ack) -> {"subject": str, "text": str, "short": str}

ctx is the delivery context queued with the notification (kind, dev, site, address,
emergency_phone, gas, level, code, reading, status, step, acked_by, incident). `ack` is
how to acknowledge (a signed link or the CLI command), or None when nothing is to be
acknowledged. `short` is the SMS / voice version (no link, a few sentences).
"""

GAS = {"zh": {"ch4": "甲烷（天然气）", "co": "一氧化碳"}, "en": {"ch4": "methane (natural gas)",
                                                          "co": "carbon monoxide"}}
LEVEL = {"zh": {1: "低限报警", 2: "高限报警"}, "en": {1: "low alarm", 2: "HIGH alarm"}}
TITLE = {
    "zh": {"alarm_on": "【燃气报警】", "alarm_off": "【报警解除】", "fault_on": "【设备故障】",
           "fault_off": "【故障恢复】", "end_of_life": "【传感器到期】", "valve_closed": "【切断阀已关闭】",
           "valve_open": "【切断阀已重新打开】", "interlock_failed": "【切断阀未能关闭】",
           "events_lost": "【设备丢失了安全事件】", "offline": "【设备离线】", "online": "【设备恢复在线】",
           "acked": "【报警已有人确认】"},
    "en": {"alarm_on": "GAS ALARM", "alarm_off": "Alarm cleared", "fault_on": "Device fault",
           "fault_off": "Fault cleared", "end_of_life": "Sensor end of life",
           "valve_closed": "Gas valve CLOSED", "valve_open": "Gas valve reopened",
           "interlock_failed": "Gas valve FAILED to close",
           "events_lost": "Device LOST safety events", "offline": "Device offline",
           "online": "Device back online", "acked": "Alarm acknowledged"},
}
DO_NOW = {
    "zh": {"ch4": "请立即：开窗通风；不要开关电灯电器、不要使用明火、不要在室内打电话；关闭燃气总阀；"
                  "所有人撤离到室外后，拨打燃气公司抢修电话 {phone}。",
           "co": "请立即：开窗通风，关闭燃气热水器/炉具，所有人撤离到空气新鲜处；"
                 "有头痛、头晕、恶心者拨打 120；并拨打燃气公司抢修电话 {phone}。"},
    "en": {"ch4": "Do now: open windows; do NOT switch lights or appliances on or off, no flames, "
                  "no phone calls indoors; close the main gas valve; get everyone outside, then "
                  "call the gas company's emergency number {phone}.",
           "co": "Do now: open windows, turn off gas heaters and stoves, get everyone into fresh "
                 "air; call 120 for anyone with headache, dizziness or nausea, and the gas "
                 "company's emergency number {phone}."},
}
NO_PHONE = {"zh": "（未配置抢修电话，请拨打当地燃气公司）", "en": "(not configured: call your gas company)"}


def _reading(ctx, lang):
    r = ctx.get("reading") or {}
    gas = ctx.get("gas")
    v = r.get("%s_ppm_x10" % gas) if gas else None
    if not isinstance(v, int):
        return None
    zh = lang == "zh"
    ppm = v / 10.0
    txt = ("%.0f ppm" % ppm) if ppm >= 100 else ("%.1f ppm" % ppm)
    if gas == "ch4":
        txt += " (%.1f %%LEL)" % (ppm / 500.0)  # 100 %LEL = 5 % vol = 50 000 ppm
    txt = ("最近读数 " if zh else "latest reading ") + txt
    before = r.get("before_event_s")
    if isinstance(before, int) and before >= 5:
        txt += ("（报警前 %d 秒读数）" % before) if zh else " (read %d s before the alarm)" % before
        if ctx.get("kind") == "alarm_on":
            txt += "，实际浓度已达报警值" if zh else ", the concentration has since reached the alarm level"
    elif before is None:
        age = r.get("age_s")
        if isinstance(age, (int, float)) and age > 90:
            txt += ("（%d 秒前读数）" % age) if zh else " (read %d s ago)" % age
    return txt


def _did(ctx, lang):
    st = ctx.get("status") or {}
    zh = lang == "zh"
    out = []
    if ctx.get("kind") == "alarm_on":
        out.append("探测器声光报警" if zh else "the detector sounds its alarm")
    if st.get("relay") == "on":
        out.append("联动继电器已动作" if zh else "its relay output switched on")
    if st.get("interlock") in ("close", "confirmed"):
        out.append("已请求关闭燃气切断阀" if zh else "it asked the gas valve to close")
    if st.get("interlock") == "confirmed":
        out.append("切断阀确认已关闭" if zh else "the valve confirmed it closed")
    if st.get("valve") == "closed":
        out.append("切断阀已关闭" if zh else "the gas valve is closed")
    return ("，" if zh else ", ").join(out)


def render(ctx, lang, ack=None):
    lang = lang if lang in ("zh", "en") else "zh"
    zh = lang == "zh"
    kind = ctx["kind"]
    where = ctx.get("address") or (ctx.get("site") if ctx.get("site") not in (None, "*") else "")
    dev = ctx.get("dev", "")
    phone = ctx.get("emergency_phone") or NO_PHONE[lang]
    gas = ctx.get("gas")
    gas_name = GAS[lang].get(gas, gas or "")
    lines = []
    title = TITLE[lang][kind]
    if kind in ("alarm_on", "alarm_off"):
        level = LEVEL[lang].get(ctx.get("level"), "")
        title = "%s%s %s" % (title, gas_name, level) if zh else "%s: %s %s" % (title, gas_name, level)
    if ctx.get("step") and kind == "alarm_on":
        title += ("（第 %d 次提醒，仍未确认）" % ctx["step"]) if zh else \
            " (reminder %d, not yet acknowledged)" % ctx["step"]
    lines.append(title)
    lines.append(("地点：%s" if zh else "Where: %s") % (where or ("未登记" if zh else "not registered")))
    lines.append(("设备：%s" if zh else "Device: %s") % dev)
    if kind in ("alarm_on", "alarm_off"):
        rd = _reading(ctx, lang)
        lines.append(("气体：%s，%s" if zh else "Gas: %s, %s")
                     % (gas_name, rd or ("浓度未知（无近期读数）" if zh else "concentration unknown (no recent reading)")))
    if kind == "alarm_on":
        did = _did(ctx, lang)
        if did:
            lines.append(("设备动作：%s。" if zh else "The device did: %s.") % did)
        lines.append(DO_NOW[lang].get(gas, DO_NOW[lang]["ch4"]).format(phone=phone))
    elif kind == "alarm_off":
        lines.append("浓度已回落，报警解除。切断阀关闭后需到现场确认安全后手动复位。" if zh else
                     "The concentration is back to normal. A closed gas valve stays closed until "
                     "someone on site has checked it is safe and resets it by hand.")
    elif kind == "valve_closed":
        cause = ctx.get("cause")
        lines.append(("燃气切断阀已关闭（原因：%s）。燃气已切断，请勿自行复位，待燃气公司或专业人员检查。"
                      if zh else "The gas supply is shut off (cause: %s). Do not reopen it "
                      "before the gas company or a qualified person has checked.") % (cause or "?"))
        lines.append(("燃气公司抢修电话：%s" if zh else "Gas company emergency: %s") % phone)
    elif kind == "valve_open":
        lines.append("切断阀已在现场被手动重新打开。" if zh else
                     "The gas valve was reopened by hand on site.")
    elif kind == "interlock_failed":
        lines.append("探测器请求关闭切断阀，但切断阀没有确认关闭！请立即手动关闭燃气总阀并撤离，拨打 %s。"
                     % phone if zh else "The detector asked the valve to close and got NO "
                     "confirmation! Close the main gas valve by hand, leave, call %s." % phone)
    elif kind in ("fault_on", "fault_off", "end_of_life"):
        code = ctx.get("code") or "?"
        if kind == "end_of_life":
            lines.append("传感器已到使用寿命，探测器不能再可靠报警，请尽快更换。" if zh else
                         "The sensor has reached its end of life; the detector can no longer be "
                         "relied on. Replace it soon.")
        elif kind == "fault_on":
            lines.append(("故障：%s。探测器可能无法报警，请尽快检修。" if zh else
                          "Fault: %s. The detector may not be able to alarm; have it serviced.")
                         % code)
        else:
            lines.append(("故障已恢复：%s。" if zh else "Fault cleared: %s.") % code)
    elif kind == "events_lost":
        if ctx.get("lost") or not ctx.get("unbuilt"):
            lines.append(("设备报告有 %s 条安全事件（报警、故障或阀门动作）因离线太久、存储已满而丢失，"
                          "平台从未收到。期间可能发生过报警：请立即查看现场和设备状态。" if zh else
                          "The device reports %s safety events (alarms, faults or valve actions) "
                          "that it had to drop while offline with its store full; they never "
                          "reached us. An alarm may have happened: check the site and the device "
                          "now.") % ctx.get("lost", "?"))
        if ctx.get("unbuilt"):
            lines.append(("设备报告有 %s 条事件因内存已满而未能记录（报警、关阀照常执行，但记录丢失），"
                          "平台从未收到。期间可能发生过报警：请立即查看现场，并检修设备。" if zh else
                          "The device reports %s events it could not record because its memory "
                          "was full (alarms and valve closing went on; the record of them is "
                          "lost). An alarm may have happened: check the site now and have the "
                          "device serviced.") % ctx["unbuilt"])
    elif kind == "offline":
        lines.append("设备与平台失去连接（断电、断网或损坏），在恢复前不能远程报警。请尽快查看。" if zh else
                     "The device lost its connection (power, network or damage); until it is back "
                     "no alarm can reach you. Please check it.")
    elif kind == "online":
        lines.append("设备已恢复在线。" if zh else "The device is connected again.")
    elif kind == "acked":
        lines.append(("%s 已确认该报警并在处理。" if zh else "%s acknowledged the alarm and is on it.")
                     % (ctx.get("acked_by") or "?"))
    if ack:
        lines.append(("确认收到（停止升级通知）：%s" if zh else "Acknowledge (stops escalation): %s")
                     % ack)
    text = "\n".join(lines)
    short = " ".join(lines[:1] + lines[1:2] + [l for l in lines[2:] if not l.startswith(
        ("确认收到", "Acknowledge", "设备：", "Device:"))])
    return {"subject": title + (" — " + where if where else ""), "text": text, "short": short}
