-- wrk script: POST a shadow report with the emulator's default Basic credentials.
-- Usage (see emulator/README.md): wrk -t2 -c16 -d10s -s emulator/bench/report.lua https://127.0.0.1:PORT
wrk.method = "POST"
wrk.path = "/api/v1/thing-datas/shadow/reported"
wrk.headers["Content-Type"] = "application/json"
-- base64("ak_emulator_demo:emulator-demo-secret")
wrk.headers["Authorization"] = "Basic YWtfZW11bGF0b3JfZGVtbzplbXVsYXRvci1kZW1vLXNlY3JldA=="
wrk.body = '{"thingName":"bench-001","state":{"reported":{"temperature":21.5,"humidity":58}},"clientToken":"tok-001","version":0}'

function response(status, headers, body)
  if status ~= 200 then
    print("unexpected status " .. status .. ": " .. body)
  end
end
