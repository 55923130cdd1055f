"""WeCom (企业微信) group robot: POST {"msgtype": "text", "text": {"content", "mentioned_mobile_list"}}
to the robot's webhook URL (https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=KEY).

Published format: WeCom developer docs "群机器人配置说明" (docs/notify.md cites it). Text is at
most 2048 bytes of UTF-8; the answer is {"errcode": 0, "errmsg": "ok"}; a robot takes at
most 20 messages a minute, which the rate limit's defaults stay under.
"""

from .web import post_json, robot_result

MAX_BYTES = 2048


def clip(text, limit):
    b = text.encode("utf-8")
    if len(b) <= limit:
        return text
    return b[: limit - 3].decode("utf-8", "ignore") + "..."


class Channel:
    def __init__(self, name, settings):
        self.name = name

    def send(self, endpoint, message):
        text = {"content": clip(message["text"], MAX_BYTES)}
        for k in ("mentioned_mobile_list", "mentioned_list"):
            if endpoint.get(k):
                text[k] = list(endpoint[k])
        _status, answer = post_json(endpoint["url"], {"msgtype": "text", "text": text})
        robot_result(answer, endpoint["url"])
