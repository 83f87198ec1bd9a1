/**
 * legato's web UI: the page shell (header, navigation) and the route -> page switch.
 * Pages fetch their own data from the JSON API (api.ts).
 */
import { render } from "preact";
import "./app.css";
import { pageNotFound } from "./api";
import { NotFound } from "./components";
import { RunPage } from "./pages/run";
import { RunsPage } from "./pages/runs";
import { ServicePage } from "./pages/service";
import { StreamPage } from "./pages/stream";
import { TimelinePage } from "./pages/timeline";
import { parse, useLocation } from "./router";
import { Link } from "./components";

function Page() {
  const location = useLocation();
  const route = parse(location.path);
  if (pageNotFound && route.page !== "runs") {
    return <NotFound id={route.page === "unknown" ? undefined : route.id} />;
  }
  switch (route.page) {
    case "runs":
      return <RunsPage query={location.query} state={location.state} />;
    case "run":
      return <RunPage key={route.id} id={route.id} />;
    case "timeline":
      return <TimelinePage key={route.id} id={route.id} query={location.query} />;
    case "service":
      return <ServicePage key={route.id} id={route.id} />;
    case "stream":
      return <StreamPage key={route.id} id={route.id} />;
    default:
      return <NotFound what="Page" />;
  }
}

function App() {
  return (
    <>
      <header class="top">
        <Link to="/runs" class="brand">legato</Link>
        <nav aria-label="Main">
          <Link to="/runs">Runs</Link>
        </nav>
      </header>
      <main>
        <Page />
      </main>
    </>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
